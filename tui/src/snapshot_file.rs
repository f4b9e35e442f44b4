//! Writing snapshots to files: JSON in the documented schema, replaced atomically.
//!
//! A reader never sees a half-written file: the new content goes to a temporary file in the
//! same directory, created exclusively and without following links, and is renamed over the
//! target. A target that is a symbolic link is refused rather than replaced or followed.
//! Files are private to the user the process runs as (0600), or readable by one group the
//! operator names (0640, `--file-group`): snapshots name the busiest hosts of a network.
//!
//! Headless mode keeps the biggest talkers and flows (`--top`, 1000 of each by default) and
//! sums up the rest in `omitted_talkers` / `omitted_flows`, so a file stays small and cheap to
//! write every interval while table rows + evicted + omitted still add up to the totals.
//!
//! A talker whose address has a known host name carries it as `name` (see
//! [`talker_names`]); the capture library's snapshot knows nothing of names.

mod talker_names;

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::{EvictedFlows, EvictedTalkers, Flow, Talker};

use crate::names::NameMap;
use crate::ranking::top_n;

/// A snapshot file: the snapshot (perhaps with only its top rows), its talkers' host names,
/// and what was left out.
struct Document<'a> {
    snapshot: &'a Snapshot,
    /// Host names for the talkers that have one.
    names: &'a NameMap,
    /// Sums of the talker rows not written.
    omitted_talkers: EvictedTalkers,
    /// Sums of the flow rows not written.
    omitted_flows: EvictedFlows,
}

impl Serialize for Document<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        talker_names::fields_into(&mut map, self.snapshot, self.names)?;
        map.serialize_entry("omitted_talkers", &self.omitted_talkers)?;
        map.serialize_entry("omitted_flows", &self.omitted_flows)?;
        map.end()
    }
}

fn talker_bytes(t: &Talker) -> u64 {
    t.bytes_sent + t.bytes_received
}

/// The order a file keeps talkers in: most bytes first, ties by address.
fn by_bytes(a: &Talker, b: &Talker) -> std::cmp::Ordering {
    talker_bytes(b)
        .cmp(&talker_bytes(a))
        .then_with(|| a.ip.cmp(&b.ip))
}

/// The addresses of the first `n` talkers a file writes: the ones worth naming.
pub fn top_addresses(snapshot: &Snapshot, n: usize) -> Vec<std::net::IpAddr> {
    top_n(&snapshot.talkers, n, by_bytes)
        .into_iter()
        .map(|t| t.ip)
        .collect()
}

fn flow_bytes(f: &Flow) -> u64 {
    f.bytes_a_to_b + f.bytes_b_to_a
}

/// The snapshot limited to the top `top` talkers and flows by total bytes (ties by address),
/// with the sums of the rows left out. Copies only the rows it keeps.
fn limited(snapshot: &Snapshot, top: usize) -> (Snapshot, EvictedTalkers, EvictedFlows) {
    let mut s = snapshot.without_rows();
    let mut omitted_talkers = EvictedTalkers::default();
    for t in &snapshot.talkers {
        omitted_talkers.add(&EvictedTalkers {
            entries: 1,
            packets_sent: t.packets_sent,
            bytes_sent: t.bytes_sent,
            packets_received: t.packets_received,
            bytes_received: t.bytes_received,
        });
    }
    let mut omitted_flows = EvictedFlows::default();
    for f in &snapshot.flows {
        omitted_flows.add(&EvictedFlows {
            entries: 1,
            packets: f.packets_a_to_b + f.packets_b_to_a,
            bytes: flow_bytes(f),
        });
    }
    s.talkers = top_n(&snapshot.talkers, top, by_bytes)
        .into_iter()
        .cloned()
        .collect();
    s.flows = top_n(&snapshot.flows, top, |a, b| {
        flow_bytes(b)
            .cmp(&flow_bytes(a))
            .then_with(|| (a.a_ip, a.b_ip).cmp(&(b.a_ip, b.b_ip)))
    })
    .into_iter()
    .cloned()
    .collect();
    for t in &s.talkers {
        omitted_talkers.entries -= 1;
        omitted_talkers.packets_sent -= t.packets_sent;
        omitted_talkers.bytes_sent -= t.bytes_sent;
        omitted_talkers.packets_received -= t.packets_received;
        omitted_talkers.bytes_received -= t.bytes_received;
    }
    for f in &s.flows {
        omitted_flows.entries -= 1;
        omitted_flows.packets -= f.packets_a_to_b + f.packets_b_to_a;
        omitted_flows.bytes -= flow_bytes(f);
    }
    (s, omitted_talkers, omitted_flows)
}

/// Writes the snapshot to `path` atomically as compact JSON (one line), streamed to the file
/// rather than built in memory, keeping the top `top` talkers and flows (all with `None`),
/// each talker with its host name from `names` when it has one.
pub fn write_snapshot(
    path: &Path,
    snapshot: &Snapshot,
    top: Option<usize>,
    names: &NameMap,
    access: FileAccess,
) -> anyhow::Result<()> {
    let kept;
    let doc = match top {
        Some(n) if n < snapshot.talkers.len().max(snapshot.flows.len()) => {
            kept = limited(snapshot, n);
            Document {
                snapshot: &kept.0,
                names,
                omitted_talkers: kept.1,
                omitted_flows: kept.2,
            }
        }
        _ => Document {
            snapshot,
            names,
            omitted_talkers: EvictedTalkers::default(),
            omitted_flows: EvictedFlows::default(),
        },
    };
    write_atomic_with(path, access, |out| {
        serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })
    .with_context(|| format!("writing snapshot {}", path.display()))
}

/// Who may read the files written: the user the process runs as, and perhaps one group.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileAccess {
    /// The group given read access (mode 0640); `None` for mode 0600.
    pub group: Option<u32>,
}

impl FileAccess {
    /// The file mode.
    pub fn mode(self) -> u32 {
        if self.group.is_some() { 0o640 } else { 0o600 }
    }
}

/// Replaces `path` with `content` via a temporary file and a rename; refuses symlinks.
pub fn write_atomic(path: &Path, content: &[u8], access: FileAccess) -> io::Result<()> {
    write_atomic_with(path, access, |out| out.write_all(content))
}

/// Replaces `path` with what `write_body` writes, via a temporary file in the same directory
/// (created exclusively, never through a link) and a rename; refuses a symlink at `path`.
///
/// The body gets the concrete buffered writer, not a `dyn Write`: serialisers write many tiny
/// pieces, and a virtual call per piece cost more than the formatting itself.
pub fn write_atomic_with(
    path: &Path,
    access: FileAccess,
    write_body: impl FnOnce(&mut BufWriter<fs::File>) -> io::Result<()>,
) -> io::Result<()> {
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.file_type().is_symlink()
    {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "the target is a symbolic link; refusing to replace or follow it",
        ));
    }
    let temp = temp_path(path);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
        // The group first, then the mode: the umask may have narrowed the one asked for at
        // creation, and the file is never readable by a group it does not have yet.
        if let Some(gid) = access.group {
            std::os::unix::fs::fchown(&file, None, Some(gid))?;
        }
        file.set_permissions(fs::Permissions::from_mode(access.mode()))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        write_body(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_data()?;
        fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "snapshot".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private scratch directory (0700, unpredictable name), removed on drop.
    fn dir() -> testlab::ScratchDir {
        testlab::ScratchDir::new("snapfile")
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = dir();
        let target = d.join("snap.json");
        write_atomic(&target, b"one", FileAccess::default()).unwrap();
        write_atomic(&target, b"two", FileAccess::default()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn files_are_private_or_readable_by_the_group_named() {
        use std::os::unix::fs::MetadataExt;
        let d = dir();
        let private = d.join("private.json");
        write_atomic(&private, b"x", FileAccess::default()).unwrap();
        assert_eq!(fs::metadata(&private).unwrap().mode() & 0o7777, 0o600);
        // SAFETY: getegid has no preconditions.
        let gid = unsafe { libc::getegid() };
        let shared = d.join("shared.json");
        write_atomic(&shared, b"x", FileAccess { group: Some(gid) }).unwrap();
        let meta = fs::metadata(&shared).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.gid()), (0o640, gid));
    }

    #[test]
    fn refuses_a_symlink_and_clobbers_nothing() {
        let d = dir();
        let victim = d.join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let link = d.join("snap.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_atomic(&link, b"evil", FileAccess::default()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn talkers_carry_their_names_and_nothing_else_changes() {
        fn json<T: Serialize>(v: &T) -> serde_json::Value {
            serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
        }
        let d = dir();
        let path = d.join("snap.json");
        let snapshot = crate::fixture::small();
        let read = |p: &Path| -> serde_json::Value {
            serde_json::from_slice(&fs::read(p).unwrap()).unwrap()
        };
        write_snapshot(
            &path,
            &snapshot,
            None,
            &NameMap::default(),
            FileAccess::default(),
        )
        .unwrap();
        let plain = read(&path);
        // Without names, the file is the snapshot's own serialisation plus the omitted sums
        // (compared through JSON text, as f32 rates read back from text).
        let mut want = json(&snapshot);
        want["omitted_talkers"] = json(&EvictedTalkers::default());
        want["omitted_flows"] = json(&EvictedFlows::default());
        assert!(
            plain == want,
            "the file without names differs from the snapshot"
        );

        let ns1: std::net::IpAddr = "2001:db8::53".parse().unwrap();
        let names: NameMap = [(ns1, std::sync::Arc::from("ns1.lab.example"))]
            .into_iter()
            .collect();
        write_snapshot(&path, &snapshot, Some(3), &names, FileAccess::default()).unwrap();
        let doc = read(&path);
        let talkers = doc["talkers"].as_array().unwrap();
        assert_eq!(talkers.len(), 3);
        for t in talkers {
            let ip: std::net::IpAddr = t["ip"].as_str().unwrap().parse().unwrap();
            let mut without = t.clone();
            let name = without.as_object_mut().unwrap().remove("name");
            if ip == ns1 {
                assert_eq!(name, Some(serde_json::json!("ns1.lab.example")));
            } else {
                assert_eq!(name, None, "{ip}");
            }
            let row = snapshot.talkers.iter().find(|r| r.ip == ip).unwrap();
            assert_eq!(without, json(row));
        }
        // Every other field is as without names.
        for key in [
            "totals",
            "workers",
            "flows",
            "evicted_talkers",
            "groups",
            "filter",
        ] {
            assert!(doc.get(key).is_some(), "{key}");
        }
        assert_eq!(doc["omitted_talkers"]["entries"], 2);
    }

    #[test]
    fn top_addresses_are_the_files_first_rows() {
        let snapshot = crate::fixture::small();
        let top = top_addresses(&snapshot, 2);
        let (kept, _, _) = limited(&snapshot, 2);
        let ips: Vec<std::net::IpAddr> = kept.talkers.iter().map(|t| t.ip).collect();
        assert_eq!(top, ips);
    }

    #[test]
    fn an_unwritable_directory_is_an_error() {
        let err = write_atomic(
            Path::new("/proc/tc-no-such-dir/snap.json"),
            b"x",
            FileAccess::default(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
