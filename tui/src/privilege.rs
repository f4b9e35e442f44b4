//! Dropping privileges once capture is set up.
//!
//! Opening `AF_PACKET` sockets and loading the eBPF filter need `CAP_NET_RAW` and `CAP_BPF`;
//! nothing after that does: the workers read rings that are already mapped, the `x` key
//! updates the filter's map through the fd opened while privileged, snapshot files go where the
//! operator can write anyway. So, as tcpdump does with `-Z` and ebpf_exporter once attached,
//! the process gives everything up between [`Capture::open`](traffic_counter_capture::Capture::open)
//! and the start of the workers, while it still has one thread, so every thread inherits the
//! result:
//!
//! * **who it runs as**: `--user NAME` (that user, its primary group and supplementary
//!   groups); else, run through `sudo` as root, the invoking user (`SUDO_UID`/`SUDO_GID`);
//!   `--user root` or no sudo keeps the identity it was started with;
//! * **capabilities**: effective, permitted and inheritable sets emptied, ambient set cleared,
//!   and the bounding set emptied when the process may (it holds `CAP_SETPCAP`: root, sudo;
//!   under `setcap` or systemd's `DynamicUser` it may not, and `no_new_privs` makes the
//!   bounding set moot: no `execve` can raise capabilities again);
//! * **`PR_SET_NO_NEW_PRIVS`** set, and the process marked non-dumpable, so that the invoking
//!   user cannot `ptrace` it or take its packet sockets and map fd through `/proc/PID/fd`.
//!
//! One exception: kernels before 6.5 with `kernel.unprivileged_bpf_disabled` set refuse every
//! `bpf(2)` call without `CAP_BPF` (`CAP_SYS_ADMIN` before 5.8), including map lookups and
//! updates through an open fd, which the reject counters and the `x` key need. There, with the
//! eBPF filter attached, that one capability is kept ([`map_access_needs`]).

mod caps;
mod identity;

use anyhow::{Context, bail};

pub use caps::{CAP_BPF, CAP_SYS_ADMIN};
pub use identity::{Identity, group_id};

/// Whom to become after setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Keep the user and groups the process was started with.
    Keep,
    /// Switch to this user and groups.
    Switch(Identity),
}

/// What the drop left the process with, for the start-up line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    /// The user and groups it now runs as.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// The user's name, where the password database has one.
    pub name: Option<String>,
    /// The one capability kept for map access on an older kernel.
    pub kept: Option<u32>,
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "running as uid {}", self.uid)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        write!(f, " gid {}, ", self.gid)?;
        match self.kept {
            None => write!(f, "no capabilities"),
            Some(cap) => write!(f, "only {}", caps::name(cap)),
        }
    }
}

/// Chooses whom to become: `--user NAME`, else the user that ran `sudo` (when `sudo_uid` is
/// given and the process runs as root), else nobody new.
pub fn target(
    user: Option<&str>,
    sudo: Option<(u32, u32)>,
    current_uid: u32,
) -> anyhow::Result<Target> {
    if let Some(name) = user {
        return Ok(Target::Switch(
            Identity::by_name(name).with_context(|| format!("--user {name}"))?,
        ));
    }
    match sudo {
        Some((uid, gid)) if current_uid == 0 => Ok(Target::Switch(Identity::by_ids(uid, gid)?)),
        _ => Ok(Target::Keep),
    }
}

/// `SUDO_UID` and `SUDO_GID` from the environment, as sudo sets them; both or nothing.
pub fn sudo_ids() -> anyhow::Result<Option<(u32, u32)>> {
    let read = |name| match std::env::var(name) {
        Ok(value) => value
            .parse::<u32>()
            .map(Some)
            .with_context(|| format!("{name}={value:?} is not a user or group id")),
        Err(_) => Ok(None),
    };
    match (read("SUDO_UID")?, read("SUDO_GID")?) {
        (Some(uid), Some(gid)) => Ok(Some((uid, gid))),
        (None, None) => Ok(None),
        _ => bail!("SUDO_UID and SUDO_GID must be set together"),
    }
}

/// The capability `bpf(2)` map access needs after the drop on kernel `release` with
/// `kernel.unprivileged_bpf_disabled` = `unprivileged_disabled`, when an eBPF filter is in use;
/// `None` where the kernel checks only the fd (6.5 and later, or unprivileged bpf allowed).
pub fn map_access_needs(release: &str, unprivileged_disabled: &str, ebpf: bool) -> Option<u32> {
    if !ebpf || unprivileged_disabled.trim() == "0" {
        return None;
    }
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if version >= (6, 5) {
        None
    } else if version >= (5, 8) {
        Some(CAP_BPF)
    } else {
        Some(CAP_SYS_ADMIN)
    }
}

/// [`map_access_needs`] for the running kernel.
pub fn running_kernel_needs(ebpf: bool) -> Option<u32> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let disabled = std::fs::read_to_string("/proc/sys/kernel/unprivileged_bpf_disabled")
        .unwrap_or_else(|_| "0".into());
    map_access_needs(&release, &disabled, ebpf)
}

/// Becomes `target` and gives up every capability but `keep`, for good. Must run while the
/// process has a single thread: capability sets belong to threads, and only threads started
/// afterwards inherit the result.
pub fn drop_to(target: &Target, keep: Option<u32>) -> anyhow::Result<Dropped> {
    let threads = std::fs::read_dir("/proc/self/task")
        .context("reading /proc/self/task")?
        .count();
    if threads != 1 {
        bail!("dropping privileges with {threads} threads running would leave some privileged");
    }
    let held = caps::current()?;
    // A capability the process does not hold cannot be kept (nor does it load eBPF then).
    let keep = keep.filter(|&cap| held.permitted & caps::bit(cap) != 0);
    if held.has(caps::CAP_SETPCAP) {
        caps::clear_bounding(keep)?;
    }
    caps::clear_ambient()?;
    let identity = match target {
        Target::Keep => Identity::current()?,
        Target::Switch(identity) => {
            identity.become_it(keep.is_some(), &held)?;
            identity.clone()
        }
    };
    caps::set(keep)?;
    caps::lock_down()?;
    let now = caps::current()?;
    let want = keep.map_or(0, caps::bit);
    if now.effective != want || now.permitted != want || now.inheritable != 0 {
        bail!("capabilities still held after the drop: {now:?}");
    }
    Ok(Dropped {
        uid: identity.uid,
        gid: identity.gid,
        name: identity.name,
        kept: keep,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_access_needs_a_capability_only_on_older_kernels_that_disable_unprivileged_bpf() {
        assert_eq!(map_access_needs("6.18.44-fc-v595", "2", true), None);
        assert_eq!(map_access_needs("6.5.0", "2", true), None);
        assert_eq!(map_access_needs("6.1.0-18-amd64", "2", true), Some(CAP_BPF));
        assert_eq!(map_access_needs("5.8.0", "1", true), Some(CAP_BPF));
        assert_eq!(
            map_access_needs("5.4.0-150-generic", "2", true),
            Some(CAP_SYS_ADMIN)
        );
        assert_eq!(map_access_needs("6.1.0", "0\n", true), None);
        assert_eq!(map_access_needs("6.1.0", "2", false), None);
    }

    #[test]
    fn sudo_picks_the_invoking_user_only_for_root_and_user_wins() {
        assert_eq!(target(None, None, 0).unwrap(), Target::Keep);
        assert_eq!(
            target(None, Some((65534, 65534)), 1000).unwrap(),
            Target::Keep
        );
        let Target::Switch(id) = target(None, Some((65534, 65534)), 0).unwrap() else {
            panic!("sudo as root switches");
        };
        assert_eq!((id.uid, id.gid), (65534, 65534));
        let Target::Switch(root) = target(Some("root"), Some((65534, 65534)), 0).unwrap() else {
            panic!("--user root switches to root");
        };
        assert_eq!((root.uid, root.gid), (0, 0));
        let err = target(Some("tc-no-such-user"), None, 0).unwrap_err();
        assert!(
            format!("{err:#}").contains("--user tc-no-such-user: no such user"),
            "{err:#}"
        );
    }

    #[test]
    fn the_start_up_line_says_who_and_what_is_kept() {
        let mut d = Dropped {
            uid: 65534,
            gid: 65534,
            name: Some("nobody".into()),
            kept: None,
        };
        assert_eq!(
            d.to_string(),
            "running as uid 65534 (nobody) gid 65534, no capabilities"
        );
        d.kept = Some(CAP_BPF);
        assert!(d.to_string().ends_with("only CAP_BPF"));
    }
}
