//! Who already uses a fanout group: the packet sockets of this network namespace, as the
//! kernel's `sock_diag` netlink interface lists them.
//!
//! Joining a fanout group that someone else created does not fail: the kernel silently
//! spreads frames across every member, and each program sees only its share (another
//! traffic-counter, an IDS such as Suricata, whose default cluster id is 99). A probe join
//! cannot tell "created" from "joined", so before joining a fixed `--fanout-group` the capture
//! asks `NETLINK_SOCK_DIAG` for every `AF_PACKET` socket with `PACKET_SHOW_FANOUT`, whose
//! `PACKET_DIAG_FANOUT` attribute carries each member's group id. The dump needs the
//! `packet_diag` module (`CONFIG_PACKET_DIAG`); where it is missing the check fails, and the
//! caller refuses rather than guesses.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `SOCK_DIAG_BY_FAMILY` (linux/sock_diag.h).
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `PACKET_SHOW_INFO`: adds `PACKET_DIAG_UID`.
const PACKET_SHOW_INFO: u32 = 0x1;
/// `PACKET_SHOW_FANOUT`: adds `PACKET_DIAG_FANOUT`.
const PACKET_SHOW_FANOUT: u32 = 0x8;
/// Attribute types (linux/packet_diag.h).
const PACKET_DIAG_FANOUT: u16 = 4;
const PACKET_DIAG_UID: u16 = 5;
/// `struct nlmsghdr`, `struct packet_diag_req`, `struct packet_diag_msg`, `struct nlattr`.
const NLMSG_HDR: usize = 16;
const REQ_LEN: usize = 20;
const MSG_LEN: usize = 16;
const NLA_HDR: usize = 4;
/// A dump larger than this many messages is not believed (a namespace has a few sockets).
const MAX_MESSAGES: usize = 1 << 20;

/// The members of one fanout group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupUse {
    /// Packet sockets in the group.
    pub sockets: usize,
    /// Their owners' uids, sorted, each once.
    pub uids: Vec<u32>,
    /// The group's `PACKET_FANOUT_*` type, as its members report it: a socket that joins must
    /// use the same.
    pub kernel_type: Option<u32>,
}

/// One packet socket from the dump.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Member {
    fanout: Option<u32>,
    uid: Option<u32>,
}

/// The sockets already in fanout group `id` in this network namespace, if any.
pub fn group_use(id: u16) -> io::Result<Option<GroupUse>> {
    let members = dump()?;
    let mut group = GroupUse::default();
    for m in members {
        if let Some(fanout) = m.fanout
            && fanout & 0xffff == u32::from(id)
        {
            group.sockets += 1;
            group.uids.extend(m.uid);
            group.kernel_type = Some((fanout >> 16) & 0xff);
        }
    }
    group.uids.sort_unstable();
    group.uids.dedup();
    Ok((group.sockets > 0).then_some(group))
}

fn dump() -> io::Result<Vec<Member>> {
    // SAFETY: socket(2) with constant arguments; the fd is owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: the option value is a valid timeval of the size given.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let request = request(1);
    // SAFETY: an all-zero sockaddr_nl addresses the kernel; the buffer is valid for its length.
    let sent = unsafe {
        let mut kernel: libc::sockaddr_nl = std::mem::zeroed();
        kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        libc::sendto(
            socket.as_raw_fd(),
            request.as_ptr().cast(),
            request.len(),
            0,
            (&raw const kernel).cast(),
            size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut members = Vec::new();
    let mut buffer = vec![0u8; 32 << 10];
    loop {
        // SAFETY: the buffer is valid for writes of its length.
        let got = unsafe {
            libc::recv(
                socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        let Ok(got) = usize::try_from(got) else {
            return Err(io::Error::last_os_error());
        };
        if parse(&buffer[..got.min(buffer.len())], &mut members)? {
            return Ok(members);
        }
        if members.len() > MAX_MESSAGES {
            return Err(io::Error::other("the packet socket dump does not end"));
        }
    }
}

/// The dump request for every packet socket with its fanout group and owner.
fn request(seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(NLMSG_HDR + REQ_LEN);
    out.extend_from_slice(&((NLMSG_HDR + REQ_LEN) as u32).to_ne_bytes());
    out.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    out.push(libc::AF_PACKET as u8); // sdiag_family
    out.push(0); // sdiag_protocol: must be 0
    out.extend_from_slice(&0u16.to_ne_bytes()); // pad
    out.extend_from_slice(&0u32.to_ne_bytes()); // pdiag_ino: every socket
    out.extend_from_slice(&(PACKET_SHOW_INFO | PACKET_SHOW_FANOUT).to_ne_bytes());
    out.extend_from_slice(&[0; 8]); // pdiag_cookie: none
    out
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

fn malformed(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("sock_diag reply: {what}"),
    )
}

/// Adds the sockets in one datagram of the dump to `members`; `true` once the dump is done.
fn parse(mut datagram: &[u8], members: &mut Vec<Member>) -> io::Result<bool> {
    while datagram.len() >= NLMSG_HDR {
        let len = u32_at(datagram, 0).and_then(|l| usize::try_from(l).ok());
        let kind = u16_at(datagram, 4);
        let (Some(len), Some(kind)) = (len, kind) else {
            return Err(malformed("short header"));
        };
        if len < NLMSG_HDR || len > datagram.len() {
            return Err(malformed("bad message length"));
        }
        let body = &datagram[NLMSG_HDR..len];
        match i32::from(kind) {
            libc::NLMSG_DONE => return Ok(true),
            libc::NLMSG_ERROR => {
                let errno = u32_at(body, 0).ok_or_else(|| malformed("short error"))?;
                #[allow(clippy::cast_possible_wrap)]
                let errno = (errno as i32).wrapping_neg();
                return Err(io::Error::from_raw_os_error(errno));
            }
            _ if kind == SOCK_DIAG_BY_FAMILY => members.push(member(body)?),
            _ => {}
        }
        datagram = datagram.get(align4(len)..).unwrap_or_default();
    }
    Ok(false)
}

/// One `packet_diag_msg` and its attributes.
fn member(body: &[u8]) -> io::Result<Member> {
    let mut attrs = body
        .get(MSG_LEN..)
        .ok_or_else(|| malformed("short socket"))?;
    let mut m = Member {
        fanout: None,
        uid: None,
    };
    while attrs.len() >= NLA_HDR {
        let (Some(len), Some(kind)) = (u16_at(attrs, 0), u16_at(attrs, 2)) else {
            break;
        };
        let len = usize::from(len);
        if len < NLA_HDR || len > attrs.len() {
            return Err(malformed("bad attribute length"));
        }
        let value = &attrs[NLA_HDR..len];
        match kind {
            PACKET_DIAG_FANOUT => m.fanout = u32_at(value, 0),
            PACKET_DIAG_UID => m.uid = u32_at(value, 0),
            _ => {}
        }
        attrs = attrs.get(align4(len)..).unwrap_or_default();
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        out.extend_from_slice(&kind.to_ne_bytes());
        out.extend_from_slice(&[0; 10]);
        out.extend_from_slice(body);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    fn socket(attrs: &[(u16, u32)]) -> Vec<u8> {
        let mut body = vec![0u8; MSG_LEN];
        for &(kind, value) in attrs {
            body.extend_from_slice(&8u16.to_ne_bytes());
            body.extend_from_slice(&kind.to_ne_bytes());
            body.extend_from_slice(&value.to_ne_bytes());
        }
        body
    }

    #[test]
    fn parses_members_done_and_errors() {
        let mut datagram = message(
            SOCK_DIAG_BY_FAMILY,
            &socket(&[
                (PACKET_DIAG_UID, 1000),
                (PACKET_DIAG_FANOUT, 0x1092 | (3 << 16)),
            ]),
        );
        datagram.extend(message(
            SOCK_DIAG_BY_FAMILY,
            &socket(&[(PACKET_DIAG_UID, 0)]),
        ));
        let mut members = Vec::new();
        assert!(!parse(&datagram, &mut members).unwrap());
        assert_eq!(
            members,
            [
                Member {
                    fanout: Some(0x1092 | (3 << 16)),
                    uid: Some(1000)
                },
                Member {
                    fanout: None,
                    uid: Some(0)
                }
            ]
        );
        assert!(parse(&message(3, &[0; 4]), &mut members).unwrap());
        let err = parse(&message(2, &(-libc::ENOENT).to_ne_bytes()), &mut members).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn refuses_lengths_that_overrun() {
        let mut datagram = message(SOCK_DIAG_BY_FAMILY, &socket(&[(PACKET_DIAG_UID, 1)]));
        datagram[0] = 200;
        assert!(parse(&datagram, &mut Vec::new()).is_err());
        let mut body = socket(&[(PACKET_DIAG_UID, 1)]);
        body[MSG_LEN] = 40;
        assert!(parse(&message(SOCK_DIAG_BY_FAMILY, &body), &mut Vec::new()).is_err());
        let request = request(7);
        assert_eq!(request.len(), NLMSG_HDR + REQ_LEN);
        assert_eq!(u32_at(&request, 0), Some(36));
    }
}
