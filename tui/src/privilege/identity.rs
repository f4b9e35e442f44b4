//! Users and groups: looking them up in the system's databases (NSS, through libc's
//! reentrant calls) and switching the process to one.

use std::ffi::{CStr, CString};
use std::io;

use anyhow::{Context, bail};

use super::caps::{self, Sets};

const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
/// Most supplementary groups looked up for one user.
const MAX_GROUPS: usize = 65_536;

/// A user to run as: ids, name and groups.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user's name, where the password database knows the uid.
    pub name: Option<String>,
    /// User id (real, effective and saved after the switch).
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Supplementary groups, sorted, the primary group included.
    pub groups: Vec<u32>,
}

/// A passwd entry's name, uid and gid.
struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
}

/// Calls a `get*_r` lookup with a buffer that grows while it is too small.
fn lookup<T>(
    mut call: impl FnMut(&mut [libc::c_char], &mut *mut T) -> libc::c_int,
    mut read: impl FnMut(&T) -> Passwd,
) -> io::Result<Option<Passwd>> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    loop {
        let mut result: *mut T = std::ptr::null_mut();
        match call(&mut buffer, &mut result) {
            0 if result.is_null() => return Ok(None),
            // SAFETY: on success `result` points at the caller's entry, filled from `buffer`,
            // both alive here.
            0 => return Ok(Some(read(unsafe { &*result }))),
            libc::ERANGE if buffer.len() < 1 << 20 => buffer.resize(buffer.len() * 2, 0),
            // Not found is 0 with a null result, but some NSS modules report ENOENT.
            libc::ENOENT => return Ok(None),
            errno => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

fn passwd_fields(pw: &libc::passwd) -> Passwd {
    // SAFETY: a passwd entry's pw_name is a NUL-terminated string in the lookup's buffer.
    let name = unsafe { CStr::from_ptr(pw.pw_name) };
    Passwd {
        name: name.to_string_lossy().into_owned(),
        uid: pw.pw_uid,
        gid: pw.pw_gid,
    }
}

fn passwd_by_name(name: &str) -> anyhow::Result<Option<Passwd>> {
    let cname = CString::new(name).context("a user name cannot contain NUL")?;
    let mut entry: libc::passwd = unsafe_zeroed_passwd();
    lookup(
        |buf, result| {
            // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
            unsafe {
                libc::getpwnam_r(
                    cname.as_ptr(),
                    &raw mut entry,
                    buf.as_mut_ptr(),
                    buf.len(),
                    result,
                )
            }
        },
        passwd_fields,
    )
    .context("reading the password database")
}

fn passwd_by_uid(uid: u32) -> anyhow::Result<Option<Passwd>> {
    let mut entry: libc::passwd = unsafe_zeroed_passwd();
    lookup(
        |buf, result| {
            // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
            unsafe { libc::getpwuid_r(uid, &raw mut entry, buf.as_mut_ptr(), buf.len(), result) }
        },
        passwd_fields,
    )
    .context("reading the password database")
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: passwd is plain data (integers and pointers); all-zero is a valid value that the
    // lookup overwrites.
    unsafe { std::mem::zeroed() }
}

/// The id of the group called `name`.
pub fn group_id(name: &str) -> anyhow::Result<u32> {
    let cname = CString::new(name).context("a group name cannot contain NUL")?;
    // SAFETY: group is plain data; all-zero is valid and the lookup overwrites it.
    let mut entry: libc::group = unsafe { std::mem::zeroed() };
    let found = lookup(
        |buf, result| {
            // SAFETY: every pointer is valid for the call; `buf.len()` is its size.
            unsafe {
                libc::getgrnam_r(
                    cname.as_ptr(),
                    &raw mut entry,
                    buf.as_mut_ptr(),
                    buf.len(),
                    result,
                )
            }
        },
        |g: &libc::group| Passwd {
            name: String::new(),
            uid: 0,
            gid: g.gr_gid,
        },
    )
    .context("reading the group database")?;
    match found {
        Some(g) => Ok(g.gid),
        None => bail!("no such group"),
    }
}

/// The groups of user `name` with primary group `gid`, sorted.
fn group_list(name: &str, gid: u32) -> anyhow::Result<Vec<u32>> {
    let cname = CString::new(name).context("a user name cannot contain NUL")?;
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `groups` holds `count` entries; getgrouplist writes at most that many and
        // sets `count` to the number it has (or needs).
        let rc =
            unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &raw mut count) };
        let needed = usize::try_from(count).unwrap_or(0);
        if rc >= 0 {
            groups.truncate(needed);
            groups.sort_unstable();
            groups.dedup();
            return Ok(groups);
        }
        if needed <= groups.len() || needed > MAX_GROUPS {
            bail!("listing the groups of {name}: {needed} groups");
        }
        groups.resize(needed, 0);
    }
}

impl Identity {
    /// The user `name` with its primary and supplementary groups.
    pub fn by_name(name: &str) -> anyhow::Result<Self> {
        let Some(pw) = passwd_by_name(name)? else {
            bail!("no such user");
        };
        let groups = group_list(&pw.name, pw.gid)?;
        Ok(Self {
            name: Some(pw.name),
            uid: pw.uid,
            gid: pw.gid,
            groups,
        })
    }

    /// The user `uid` with primary group `gid`, as sudo names the invoking user; its
    /// supplementary groups where the password database knows it, else `gid` alone.
    pub fn by_ids(uid: u32, gid: u32) -> anyhow::Result<Self> {
        let pw = passwd_by_uid(uid)?;
        let groups = match &pw {
            Some(pw) => group_list(&pw.name, gid)?,
            None => vec![gid],
        };
        Ok(Self {
            name: pw.map(|pw| pw.name),
            uid,
            gid,
            groups,
        })
    }

    /// The identity the process runs as now (effective ids).
    pub fn current() -> anyhow::Result<Self> {
        // SAFETY: these calls have no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let mut groups = current_groups()?;
        groups.push(gid);
        groups.sort_unstable();
        groups.dedup();
        Ok(Self {
            name: passwd_by_uid(uid)?.map(|pw| pw.name),
            uid,
            gid,
            groups,
        })
    }

    /// Whether files may be given group `gid` by this user (a member of it).
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// The name for messages: the user name, else the uid.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("uid {}", self.uid))
    }

    /// Switches real, effective and saved ids and the groups to this identity. `keep_caps`
    /// keeps the permitted set across the switch (for the one capability kept for maps).
    pub(super) fn become_it(&self, keep_caps: bool, held: &Sets) -> anyhow::Result<()> {
        if self.is_current()? {
            return Ok(());
        }
        if !held.has(CAP_SETUID) || !held.has(CAP_SETGID) {
            bail!(
                "switching to {} needs CAP_SETUID and CAP_SETGID: run as root or through sudo, \
                 or leave out --user",
                self.label()
            );
        }
        if keep_caps {
            caps::keep_across_setuid(true)?;
        }
        let os = |rc: libc::c_int, what: &str| -> anyhow::Result<()> {
            if rc != 0 {
                return Err(io::Error::last_os_error())
                    .with_context(|| format!("{what} for {}", self.label()));
            }
            Ok(())
        };
        // SAFETY: `groups` is valid for `len` entries. glibc applies these id changes to every
        // thread of the process; there is only one now.
        unsafe {
            os(
                libc::setgroups(self.groups.len(), self.groups.as_ptr()),
                "setgroups",
            )?;
            os(libc::setresgid(self.gid, self.gid, self.gid), "setresgid")?;
            os(libc::setresuid(self.uid, self.uid, self.uid), "setresuid")?;
        }
        if keep_caps {
            caps::keep_across_setuid(false)?;
        }
        if !self.is_current()? {
            bail!("the switch to {} did not take", self.label());
        }
        Ok(())
    }

    /// Whether real, effective and saved ids and the groups already are this identity.
    fn is_current(&self) -> anyhow::Result<bool> {
        let (mut r, mut e, mut s) = (0, 0, 0);
        let (mut rg, mut eg, mut sg) = (0, 0, 0);
        // SAFETY: the pointers are to locals valid for the calls.
        unsafe {
            libc::getresuid(&raw mut r, &raw mut e, &raw mut s);
            libc::getresgid(&raw mut rg, &raw mut eg, &raw mut sg);
        }
        let mut groups = current_groups()?;
        groups.sort_unstable();
        groups.dedup();
        Ok([r, e, s] == [self.uid; 3] && [rg, eg, sg] == [self.gid; 3] && groups == self.groups)
    }
}

/// The supplementary groups of the process.
fn current_groups() -> anyhow::Result<Vec<u32>> {
    // SAFETY: a zero-length query returns the count and writes nothing.
    let count = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let mut groups = vec![0 as libc::gid_t; usize::try_from(count).unwrap_or(0)];
    // SAFETY: `groups` has room for `count` entries.
    let got = unsafe { libc::getgroups(count, groups.as_mut_ptr()) };
    if got < 0 {
        return Err(io::Error::last_os_error()).context("getgroups");
    }
    groups.truncate(usize::try_from(got).unwrap_or(0));
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_users_and_groups() {
        let nobody = Identity::by_name("nobody").unwrap();
        assert_eq!(
            (nobody.uid, nobody.name.as_deref()),
            (65534, Some("nobody"))
        );
        assert!(nobody.in_group(nobody.gid));
        let root = Identity::by_ids(0, 0).unwrap();
        assert_eq!(root.name.as_deref(), Some("root"));
        assert!(root.groups.contains(&0));
        let unknown = Identity::by_ids(4_000_000, 4_000_001).unwrap();
        assert_eq!(unknown.label(), "uid 4000000");
        assert_eq!((unknown.name, unknown.groups), (None, vec![4_000_001]));
        assert_eq!(group_id("root").unwrap(), 0);
        assert!(group_id("tc-no-such-group").is_err());
        assert!(Identity::by_name("tc-no-such-user").is_err());
    }
}
