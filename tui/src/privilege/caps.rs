//! The calling thread's capability sets through `capget`/`capset`/`prctl`, which libc
//! exposes only as raw syscalls and constants.

use std::io;

use anyhow::Context;

/// `CAP_SETPCAP`: needed to shrink the bounding set.
pub const CAP_SETPCAP: u32 = 8;
/// `CAP_SYS_ADMIN`: what `bpf(2)` needed before 5.8.
pub const CAP_SYS_ADMIN: u32 = 21;
/// `CAP_BPF` (5.8 and later).
pub const CAP_BPF: u32 = 39;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct Header {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// One thread's capability sets as 64-bit masks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sets {
    /// What the thread may use now.
    pub effective: u64,
    /// What it may make effective.
    pub permitted: u64,
    /// What survives `execve` for ambient or file capabilities.
    pub inheritable: u64,
}

impl Sets {
    /// Whether the effective set holds `cap`.
    pub fn has(&self, cap: u32) -> bool {
        self.effective & bit(cap) != 0
    }
}

/// The mask of one capability.
pub fn bit(cap: u32) -> u64 {
    1u64 << cap
}

/// The name of the capabilities this module keeps.
pub fn name(cap: u32) -> &'static str {
    match cap {
        CAP_BPF => "CAP_BPF",
        CAP_SYS_ADMIN => "CAP_SYS_ADMIN",
        CAP_SETPCAP => "CAP_SETPCAP",
        _ => "a capability",
    }
}

fn check(rc: libc::c_long, what: &str) -> anyhow::Result<()> {
    if rc < 0 {
        return Err(io::Error::last_os_error()).context(what.to_owned());
    }
    Ok(())
}

/// The calling thread's capability sets.
pub fn current() -> anyhow::Result<Sets> {
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget writes two `Data` for version 3 into `data`, which has room for them.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &raw mut header, data.as_mut_ptr()) };
    check(rc, "capget")?;
    let join = |f: fn(&Data) -> u32| u64::from(f(&data[0])) | (u64::from(f(&data[1])) << 32);
    Ok(Sets {
        effective: join(|d| d.effective),
        permitted: join(|d| d.permitted),
        inheritable: join(|d| d.inheritable),
    })
}

/// Sets the effective and permitted sets to `keep` alone (or nothing) and empties the
/// inheritable set, which also empties the ambient set.
pub fn set(keep: Option<u32>) -> anyhow::Result<()> {
    let mask = keep.map_or(0, bit);
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    #[allow(clippy::cast_possible_truncation)]
    let data = [
        Data {
            effective: mask as u32,
            permitted: mask as u32,
            inheritable: 0,
        },
        Data {
            effective: (mask >> 32) as u32,
            permitted: (mask >> 32) as u32,
            inheritable: 0,
        },
    ];
    // SAFETY: capset reads a header and two `Data` for version 3, both valid for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) };
    check(rc, "capset: emptying the capability sets")
}

fn prctl(option: libc::c_int, arg: libc::c_ulong, what: &str) -> anyhow::Result<libc::c_int> {
    // SAFETY: prctl with integer arguments only; unused ones are zero as the kernel requires.
    let rc = unsafe { libc::prctl(option, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) };
    check(libc::c_long::from(rc), what)?;
    Ok(rc)
}

/// Removes every capability but `keep` from the bounding set (needs `CAP_SETPCAP`).
pub fn clear_bounding(keep: Option<u32>) -> anyhow::Result<()> {
    for cap in 0..64u32 {
        if Some(cap) == keep {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        let present = unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap)) };
        if present < 0 {
            break; // past the last capability this kernel knows
        }
        if present == 1 {
            prctl(
                libc::PR_CAPBSET_DROP,
                libc::c_ulong::from(cap),
                "dropping the capability bounding set",
            )?;
        }
    }
    Ok(())
}

/// Empties the ambient set (kernels before 4.3 have none, which is as good).
pub fn clear_ambient() -> anyhow::Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    let err = io::Error::last_os_error();
    if rc < 0 && err.raw_os_error() != Some(libc::EINVAL) {
        return Err(err).context("clearing the ambient capabilities");
    }
    Ok(())
}

/// Keeps permitted capabilities across the coming `setresuid` (for the one kept for maps).
pub fn keep_across_setuid(on: bool) -> anyhow::Result<()> {
    prctl(
        libc::PR_SET_KEEPCAPS,
        libc::c_ulong::from(on),
        "PR_SET_KEEPCAPS",
    )
    .map(drop)
}

/// Sets `no_new_privs` (no `execve` can grant anything again) and makes the process
/// non-dumpable (no same-user `ptrace`, no `/proc/PID/fd` access to its sockets).
pub fn lock_down() -> anyhow::Result<()> {
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, "PR_SET_NO_NEW_PRIVS")?;
    prctl(libc::PR_SET_DUMPABLE, 0, "PR_SET_DUMPABLE")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_threads_sets() {
        let sets = current().unwrap();
        assert_eq!(sets.effective & !sets.permitted, 0, "{sets:?}");
        assert_eq!(bit(CAP_BPF), 1 << 39);
        assert_eq!(name(CAP_BPF), "CAP_BPF");
    }
}
