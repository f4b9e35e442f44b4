//! Private scratch space for privileged tests.
//!
//! Tests run as root, and `/tmp` is shared with every other user on the machine. A guessable
//! path there (`/tmp/tc-test-<pid>`) lets anyone create it first, or plant a symlink that makes
//! root write wherever they like. [`ScratchDir::new`] does what `mkdtemp(3)` does: a fresh
//! directory with an unpredictable name, created (never reused) with mode 0700 and owned by the
//! test, removed on drop. Files created *inside* it cannot be swapped by anyone else, so tests
//! put every file they write, and every path they hand to the program under test, under it.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A private directory (mode 0700, unpredictable name), deleted with its contents on drop.
///
/// ```no_run
/// let scratch = testlab::ScratchDir::new("headless");
/// let snapshot = scratch.join("snap.json");
/// // hand `snapshot` to the program under test, read it back afterwards
/// ```
pub struct ScratchDir {
    dir: tempfile::TempDir,
}

impl ScratchDir {
    /// Creates `$TMPDIR/tc-<tag>-XXXXXX` (a random suffix) with mode 0700.
    ///
    /// Panics if the directory cannot be created, or if it does not end up a real directory
    /// owned by this process's effective user with mode 0700 (a defence against a misbehaving
    /// `tempfile`, not against other users, who cannot predict the name).
    pub fn new(tag: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tc-{tag}-"))
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .unwrap_or_else(|e| panic!("creating a private scratch directory: {e}"));
        let meta = fs::symlink_metadata(dir.path()).unwrap();
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert!(
            meta.is_dir() && meta.uid() == euid && meta.mode() & 0o777 == 0o700,
            "{} is not a private directory: {meta:?}",
            dir.path().display()
        );
        Self { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A path for `name` inside the directory (nothing is created).
    pub fn join(&self, name: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Creates the subdirectory `name`, mode 0700, owned by `uid`:`gid`, for a program under
    /// test that runs as another user (`--user nobody`) and must write there.
    ///
    /// That user must be able to pass through this directory to reach it, so this directory
    /// becomes 0711: others may traverse it but not list it, and its name and the
    /// subdirectory's stay unguessable to anyone but that user. Read what that user wrote
    /// with [`read_no_follow`]: they could have replaced a file with a symlink.
    pub fn subdir_owned_by(&self, name: &str, uid: u32, gid: u32) -> PathBuf {
        fs::set_permissions(self.path(), fs::Permissions::from_mode(0o711))
            .unwrap_or_else(|e| panic!("chmod 0711 {}: {e}", self.path().display()));
        let path = self.join(name);
        DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .unwrap_or_else(|e| panic!("chown {uid}:{gid} {}: {e}", path.display()));
        path
    }
}

/// Reads `path` as UTF-8 text, refusing to follow a symlink in its last component
/// (`O_NOFOLLOW`), for files written by a less trusted user.
pub fn read_no_follow(path: &Path) -> io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scratch_dirs_are_private_unpredictable_and_removed() {
        let a = ScratchDir::new("unit");
        let b = ScratchDir::new("unit");
        assert_ne!(a.path(), b.path());
        let name = a.path().file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("tc-unit-") && name.len() > "tc-unit-".len() + 4);
        let meta = fs::symlink_metadata(a.path()).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        fs::write(a.join("f"), "x").unwrap();
        let kept = a.path().to_owned();
        drop(a);
        assert!(!kept.exists());
    }

    #[test]
    fn read_no_follow_refuses_a_symlink() {
        let dir = ScratchDir::new("unit");
        fs::write(dir.join("real"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        assert_eq!(read_no_follow(&dir.join("real")).unwrap(), "secret");
        let err = read_no_follow(&dir.join("link")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }
}
