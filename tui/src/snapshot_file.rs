//! Writing snapshots to files: JSON in the documented schema, replaced atomically.
//!
//! A reader never sees a half-written file: the new content goes to a temporary file in the
//! same directory, created exclusively and without following links, and is renamed over the
//! target. A target that is a symbolic link is refused rather than replaced or followed.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::{Flow, Talker};

use crate::ranking::top_n;

/// The snapshot limited to the top `top` talkers and flows by total bytes.
fn limited(snapshot: &Snapshot, top: usize) -> Snapshot {
    let mut s = snapshot.clone();
    let total = |t: &Talker| t.bytes_sent + t.bytes_received;
    s.talkers = top_n(&snapshot.talkers, top, |a, b| {
        total(b).cmp(&total(a)).then_with(|| a.ip.cmp(&b.ip))
    })
    .into_iter()
    .cloned()
    .collect();
    let total = |f: &Flow| f.bytes_a_to_b + f.bytes_b_to_a;
    s.flows = top_n(&snapshot.flows, top, |a, b| total(b).cmp(&total(a)))
        .into_iter()
        .cloned()
        .collect();
    s
}

/// Writes the snapshot to `path` atomically as compact JSON (one line), streamed to the file
/// rather than built in memory: a hundred thousand rows would otherwise cost tens of MiB.
pub fn write_snapshot(path: &Path, snapshot: &Snapshot, top: Option<usize>) -> anyhow::Result<()> {
    let limited_copy;
    let doc = match top {
        Some(n) => {
            limited_copy = limited(snapshot, n);
            &limited_copy
        }
        None => snapshot,
    };
    write_atomic_with(path, |out| {
        serde_json::to_writer(&mut *out, doc).map_err(io::Error::other)?;
        out.write_all(b"\n")
    })
    .with_context(|| format!("writing snapshot {}", path.display()))
}

/// Replaces `path` with `content` via a temporary file and a rename; refuses symlinks.
pub fn write_atomic(path: &Path, content: &[u8]) -> io::Result<()> {
    write_atomic_with(path, |out| out.write_all(content))
}

/// Replaces `path` with what `write_body` writes, via a temporary file in the same directory
/// (created exclusively, never through a link) and a rename; refuses a symlink at `path`.
pub fn write_atomic_with(
    path: &Path,
    write_body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
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
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temp)?;
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

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "tc-snapfile-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = dir();
        let target = d.join("snap.json");
        write_atomic(&target, b"one").unwrap();
        write_atomic(&target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn refuses_a_symlink_and_clobbers_nothing() {
        let d = dir();
        let victim = d.join("victim");
        fs::write(&victim, b"keep me").unwrap();
        let link = d.join("snap.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let err = write_atomic(&link, b"evil").unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read(&victim).unwrap(), b"keep me");
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        fs::remove_dir_all(d).unwrap();
    }

    #[test]
    fn an_unwritable_directory_is_an_error() {
        let err = write_atomic(Path::new("/proc/tc-no-such-dir/snap.json"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }
}
