//! Loads the compiled eBPF program with aya, configures its maps from the rules, attaches it to
//! sockets, reads its reject counters, and edits its prefix lists while capture runs.
//!
//! The object is compiled from `filter.bpf.c` by `make ebpf` and committed, so building the
//! workspace needs no clang; it is embedded aligned, as aya requires.

use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;
use std::sync::Mutex;

use aya::Ebpf;
use aya::maps::lpm_trie::{Key, LpmTrie};
use aya::maps::{Array, MapData, PerCpuArray};
use aya::programs::SocketFilter;
use ipnet::IpNet;
use traffic_counter_capture::PacketFilter;
use traffic_counter_capture::snapshot::{FilterKind, Rejects};

use crate::consts::{
    TC_CFG_ALLOW, TC_CFG_EXCLUDE, TC_CFG_UNTAGGED, TC_CFG_VLAN, TC_CONFIG_FLAGS,
    TC_CONFIG_SNAP_LEN, TC_MAP_ALLOW_V4, TC_MAP_ALLOW_V6, TC_MAP_CONFIG, TC_MAP_EXCLUDE_V4,
    TC_MAP_EXCLUDE_V6, TC_MAP_REJECTS, TC_MAP_VLANS, TC_MAX_PREFIXES, TC_PROGRAM,
    TC_REASON_EXCLUDED, TC_REASON_NON_IP, TC_REASON_NOT_ALLOWED, TC_REASON_VLAN,
};
use crate::rules::{FilterRules, canonical};

/// The compiled program, aligned for aya's ELF parser.
static OBJECT: &[u8] = aya::include_bytes_aligned!("filter.bpf.o");

/// Why the eBPF filter could not be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum EbpfError {
    /// The kernel refused for lack of privilege.
    #[error(
        "loading the eBPF socket filter needs CAP_BPF (or CAP_SYS_ADMIN on kernels before 5.8): {0}"
    )]
    Permission(String),
    /// Loading failed for another reason (old kernel, verifier, missing BTF...).
    #[error("loading the eBPF socket filter: {0}")]
    Load(String),
    /// A map update failed.
    #[error("updating the filter's {map} map: {message}")]
    Map {
        /// The map's name.
        map: &'static str,
        /// What aya reported.
        message: String,
    },
    /// More prefixes than a trie holds.
    #[error("at most {TC_MAX_PREFIXES} prefixes per list and address family")]
    TooManyPrefixes,
    /// A prefix to remove is not in the list.
    #[error("{net} is not in the {list} list")]
    NotListed {
        /// The list's name.
        list: &'static str,
        /// The prefix, as the filter holds it.
        net: IpNet,
    },
}

/// Which prefix list to edit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrefixList {
    /// `--exclude`.
    Exclude,
    /// `--allow`.
    Allow,
}

struct Maps {
    config: Array<MapData, u32>,
    exclude_v4: LpmTrie<MapData, [u8; 4], u8>,
    exclude_v6: LpmTrie<MapData, [u8; 16], u8>,
    allow_v4: LpmTrie<MapData, [u8; 4], u8>,
    allow_v6: LpmTrie<MapData, [u8; 16], u8>,
    rejects: PerCpuArray<MapData, u64>,
    /// The prefixes in each list, as the tries hold them: whether a list is empty decides its
    /// config bit, and the tries cannot say so themselves.
    exclude: BTreeSet<IpNet>,
    allow: BTreeSet<IpNet>,
}

/// The loaded eBPF socket filter.
pub struct EbpfFilter {
    ebpf: Ebpf,
    maps: Mutex<Maps>,
}

impl std::fmt::Debug for EbpfFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EbpfFilter").finish_non_exhaustive()
    }
}

fn load_error(err: &(dyn std::error::Error + 'static)) -> EbpfError {
    let mut chain = Some(err);
    let mut text = err.to_string();
    while let Some(e) = chain {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && matches!(io.raw_os_error(), Some(libc::EPERM | libc::EACCES))
        {
            return EbpfError::Permission(text);
        }
        chain = e.source();
        if let Some(next) = chain {
            text = format!("{text}: {next}");
        }
    }
    if text.contains("Operation not permitted") {
        EbpfError::Permission(text)
    } else {
        EbpfError::Load(text)
    }
}

fn map_error(map: &'static str) -> impl Fn(aya::maps::MapError) -> EbpfError {
    move |e| EbpfError::Map {
        map,
        message: e.to_string(),
    }
}

impl EbpfFilter {
    /// Loads the program into the kernel and configures it for `rules`.
    pub fn load(rules: &FilterRules) -> Result<Self, EbpfError> {
        let mut ebpf = Ebpf::load(OBJECT).map_err(|e| load_error(&e))?;
        let program: &mut SocketFilter = ebpf
            .program_mut(TC_PROGRAM)
            .ok_or_else(|| {
                EbpfError::Load(format!("program {TC_PROGRAM} missing from the object"))
            })?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| load_error(&e))?;
        program.load().map_err(|e| load_error(&e))?;

        let mut take = |name: &'static str| {
            ebpf.take_map(name)
                .ok_or_else(|| EbpfError::Load(format!("map {name} missing from the object")))
        };
        let mut vlans: Array<MapData, u8> =
            Array::try_from(take(TC_MAP_VLANS)?).map_err(map_error(TC_MAP_VLANS))?;
        let mut maps = Maps {
            config: Array::try_from(take(TC_MAP_CONFIG)?).map_err(map_error(TC_MAP_CONFIG))?,
            exclude_v4: LpmTrie::try_from(take(TC_MAP_EXCLUDE_V4)?)
                .map_err(map_error(TC_MAP_EXCLUDE_V4))?,
            exclude_v6: LpmTrie::try_from(take(TC_MAP_EXCLUDE_V6)?)
                .map_err(map_error(TC_MAP_EXCLUDE_V6))?,
            allow_v4: LpmTrie::try_from(take(TC_MAP_ALLOW_V4)?)
                .map_err(map_error(TC_MAP_ALLOW_V4))?,
            allow_v6: LpmTrie::try_from(take(TC_MAP_ALLOW_V6)?)
                .map_err(map_error(TC_MAP_ALLOW_V6))?,
            rejects: PerCpuArray::try_from(take(TC_MAP_REJECTS)?)
                .map_err(map_error(TC_MAP_REJECTS))?,
            exclude: BTreeSet::new(),
            allow: BTreeSet::new(),
        };

        let mut flags = 0;
        if let Some(list) = &rules.vlans {
            flags |= TC_CFG_VLAN;
            if list.untagged {
                flags |= TC_CFG_UNTAGGED;
            }
            for &id in &list.ids {
                vlans
                    .set(u32::from(id), 1, 0)
                    .map_err(map_error(TC_MAP_VLANS))?;
            }
        }
        for &net in &rules.exclude {
            maps.insert(PrefixList::Exclude, canonical(net))?;
        }
        for &net in rules.allow_list().unwrap_or_default() {
            maps.insert(PrefixList::Allow, canonical(net))?;
        }
        maps.config
            .set(TC_CONFIG_FLAGS, flags | maps.list_bits(), 0)
            .map_err(map_error(TC_MAP_CONFIG))?;
        Ok(Self {
            ebpf,
            maps: Mutex::new(maps),
        })
    }

    /// Adds a prefix to a list while capture runs; the next frame sees it.
    ///
    /// The prefix is normalised as [`canonical`] does. Adding the first allowed prefix closes
    /// the filter to everything else.
    pub fn add(&self, list: PrefixList, net: IpNet) -> Result<(), EbpfError> {
        let mut maps = self
            .maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Into the trie first, then the config bit, so no frame sees the bit over a trie
        // without the prefix.
        maps.insert(list, canonical(net))?;
        maps.update_bits()
    }

    /// Removes a prefix from a list while capture runs.
    ///
    /// Removing the last allowed prefix lifts the allow restriction: every frame the other
    /// checks pass is let through again, rather than none.
    pub fn remove(&self, list: PrefixList, net: IpNet) -> Result<(), EbpfError> {
        let mut maps = self
            .maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let net = canonical(net);
        if !maps.listed(list).contains(&net) {
            return Err(EbpfError::NotListed {
                list: list_name(list),
                net,
            });
        }
        // The config bit goes first when the list empties, so no frame sees the bit over an
        // empty trie (which would reject everything as not allowed).
        maps.listed_mut(list).remove(&net);
        maps.update_bits()?;
        let removed = maps.remove(list, net);
        if removed.is_err() {
            // Still in the trie: keep it listed, and its bit set.
            maps.listed_mut(list).insert(net);
            maps.update_bits()?;
        }
        removed
    }
}

impl Maps {
    fn listed(&self, list: PrefixList) -> &BTreeSet<IpNet> {
        match list {
            PrefixList::Exclude => &self.exclude,
            PrefixList::Allow => &self.allow,
        }
    }

    fn listed_mut(&mut self, list: PrefixList) -> &mut BTreeSet<IpNet> {
        match list {
            PrefixList::Exclude => &mut self.exclude,
            PrefixList::Allow => &mut self.allow,
        }
    }

    /// The config bits of the prefix lists: set exactly for the lists that hold a prefix.
    fn list_bits(&self) -> u32 {
        let mut bits = 0;
        if !self.exclude.is_empty() {
            bits |= TC_CFG_EXCLUDE;
        }
        if !self.allow.is_empty() {
            bits |= TC_CFG_ALLOW;
        }
        bits
    }

    /// Rewrites the config word's list bits from the lists, keeping the VLAN bits.
    fn update_bits(&mut self) -> Result<(), EbpfError> {
        let flags = self
            .config
            .get(&TC_CONFIG_FLAGS, 0)
            .map_err(map_error(TC_MAP_CONFIG))?;
        let flags = (flags & !(TC_CFG_EXCLUDE | TC_CFG_ALLOW)) | self.list_bits();
        self.config
            .set(TC_CONFIG_FLAGS, flags, 0)
            .map_err(map_error(TC_MAP_CONFIG))
    }

    /// Puts a canonical prefix into its trie and its list.
    fn insert(&mut self, list: PrefixList, net: IpNet) -> Result<(), EbpfError> {
        let result = match (list, net) {
            (PrefixList::Exclude, IpNet::V4(n)) => self.exclude_v4.insert(
                &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                1,
                0,
            ),
            (PrefixList::Exclude, IpNet::V6(n)) => self.exclude_v6.insert(
                &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                1,
                0,
            ),
            (PrefixList::Allow, IpNet::V4(n)) => self.allow_v4.insert(
                &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                1,
                0,
            ),
            (PrefixList::Allow, IpNet::V6(n)) => self.allow_v6.insert(
                &Key::new(u32::from(n.prefix_len()), n.network().octets()),
                1,
                0,
            ),
        };
        result.map_err(|e| match e {
            aya::maps::MapError::SyscallError(ref s)
                if s.io_error.raw_os_error() == Some(libc::ENOSPC) =>
            {
                EbpfError::TooManyPrefixes
            }
            other => map_error(list_name(list))(other),
        })?;
        self.listed_mut(list).insert(net);
        Ok(())
    }

    /// Takes a canonical prefix out of its trie.
    fn remove(&mut self, list: PrefixList, net: IpNet) -> Result<(), EbpfError> {
        match (list, net) {
            (PrefixList::Exclude, IpNet::V4(n)) => self
                .exclude_v4
                .remove(&Key::new(u32::from(n.prefix_len()), n.network().octets())),
            (PrefixList::Exclude, IpNet::V6(n)) => self
                .exclude_v6
                .remove(&Key::new(u32::from(n.prefix_len()), n.network().octets())),
            (PrefixList::Allow, IpNet::V4(n)) => self
                .allow_v4
                .remove(&Key::new(u32::from(n.prefix_len()), n.network().octets())),
            (PrefixList::Allow, IpNet::V6(n)) => self
                .allow_v6
                .remove(&Key::new(u32::from(n.prefix_len()), n.network().octets())),
        }
        .map_err(map_error(list_name(list)))
    }
}

fn list_name(list: PrefixList) -> &'static str {
    match list {
        PrefixList::Exclude => "exclude",
        PrefixList::Allow => "allow",
    }
}

impl PacketFilter for EbpfFilter {
    fn kind(&self) -> FilterKind {
        FilterKind::Ebpf
    }

    fn attach(&self, socket: BorrowedFd<'_>, snap_len: u32) -> Result<(), String> {
        // One program serves every socket, so the snap length is one word in its config map.
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .config
            .set(TC_CONFIG_SNAP_LEN, snap_len, 0)
            .map_err(|e| format!("{TC_MAP_CONFIG}: {e}"))?;
        let program: &SocketFilter = self
            .ebpf
            .program(TC_PROGRAM)
            .ok_or_else(|| format!("program {TC_PROGRAM} missing"))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| e.to_string())?;
        program.attach(socket).map_err(|e| e.to_string())
    }

    fn rejects(&self) -> Option<Rejects> {
        let maps = self
            .maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = |reason: u32| -> Option<u64> {
            let values = maps.rejects.get(&reason, 0).ok()?;
            Some(values.iter().sum())
        };
        Some(Rejects {
            vlan: count(TC_REASON_VLAN)?,
            non_ip: count(TC_REASON_NON_IP)?,
            excluded: count(TC_REASON_EXCLUDED)?,
            not_allowed: count(TC_REASON_NOT_ALLOWED)?,
        })
    }
}
