//! CPU lists (`0-3,6`) and pinning the calling thread to one CPU.
//!
//! Each capture worker is pinned so that its ring, its tables and its cache lines stay on one
//! core; with `--fanout cpu` the pinning also lines workers up with the CPUs that fill them.

use std::io;

use crate::CaptureError;

/// Parses a CPU list such as `0-3,6` into sorted, de-duplicated CPU numbers.
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = Vec::new();
    for part in text.split(',').map(str::trim) {
        if part.is_empty() {
            return Err(format!("empty item in CPU list {text:?}"));
        }
        let (lo, hi) = if let Some((lo, hi)) = part.split_once('-') {
            (parse_cpu(lo, text)?, parse_cpu(hi, text)?)
        } else {
            let cpu = parse_cpu(part, text)?;
            (cpu, cpu)
        };
        if lo > hi {
            return Err(format!(
                "range {part:?} runs backwards in CPU list {text:?}"
            ));
        }
        if hi >= libc::CPU_SETSIZE as usize {
            return Err(format!(
                "CPU {hi} is beyond the largest CPU number this build supports"
            ));
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

fn parse_cpu(item: &str, text: &str) -> Result<usize, String> {
    item.trim()
        .parse()
        .map_err(|_| format!("{item:?} is not a CPU number in CPU list {text:?}"))
}

/// The CPUs this process may run on, in ascending order.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 means this thread; the pointer and size describe `set`.
    let rc = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) };
    if rc != 0 {
        let n = std::thread::available_parallelism().map_or(1, usize::from);
        return (0..n).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, so CPU_ISSET stays inside `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Pins the calling thread to `cpu`.
pub(crate) fn pin_current_thread(worker: usize, cpu: usize) -> Result<(), CaptureError> {
    // SAFETY: cpu_set_t is plain data; all-zero is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: callers pass CPUs from parse_cpu_list/allowed_cpus, all below CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 means the calling thread; the pointer and size describe `set`.
    let rc = unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(CaptureError::Affinity {
            worker,
            cpu,
            source: io::Error::last_os_error(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ranges_and_singles() {
        assert_eq!(parse_cpu_list("0-3,6"), Ok(vec![0, 1, 2, 3, 6]));
        assert_eq!(parse_cpu_list("5, 1,1-2"), Ok(vec![1, 2, 5]));
    }

    #[test]
    fn rejects_bad_lists() {
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
        assert!(parse_cpu_list("1,,2").is_err());
        assert!(parse_cpu_list("99999").is_err());
    }

    #[test]
    fn this_process_may_run_somewhere() {
        assert!(!allowed_cpus().is_empty());
    }
}
