//! Choosing the filter for `--filter auto|ebpf|classic|none`.
//!
//! `auto` prefers eBPF, which counts its rejects; when eBPF cannot load it says why in one line
//! and falls back to the classic program, whose rejects are unknown.

use std::sync::Arc;

use traffic_counter_capture::PacketFilter;

use crate::classic::{ClassicError, ClassicFilter};
use crate::loader::{EbpfError, EbpfFilter};
use crate::rules::FilterRules;

/// The `--filter` choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FilterMode {
    /// eBPF, else classic.
    #[default]
    Auto,
    /// eBPF or fail.
    Ebpf,
    /// Classic BPF.
    Classic,
    /// No filter: every frame reaches userspace.
    None,
}

/// Why no filter could be set up as asked.
#[derive(Debug, thiserror::Error)]
pub enum SelectError {
    /// eBPF was required and failed.
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    /// The classic program could not be generated.
    #[error(transparent)]
    Classic(#[from] ClassicError),
    /// Filtering rules were given with `--filter none`.
    #[error("--vlan, --allow and --exclude need a socket filter; drop --filter none")]
    RulesWithoutFilter,
}

/// The filter chosen, with the eBPF handle for live list updates where there is one.
#[derive(Default)]
pub struct Selected {
    /// What capture attaches; `None` for `--filter none`.
    pub filter: Option<Arc<dyn PacketFilter>>,
    /// The eBPF filter, for adding and removing prefixes while capture runs.
    pub ebpf: Option<Arc<EbpfFilter>>,
    /// A line to show the operator: why `auto` fell back to classic.
    pub notice: Option<String>,
}

/// Sets up the filter `mode` asks for, enforcing `rules`.
pub fn select(mode: FilterMode, rules: &FilterRules) -> Result<Selected, SelectError> {
    let classic = |notice| -> Result<Selected, SelectError> {
        Ok(Selected {
            filter: Some(Arc::new(ClassicFilter::new(rules)?)),
            ebpf: None,
            notice,
        })
    };
    match mode {
        FilterMode::None if *rules != FilterRules::default() => {
            Err(SelectError::RulesWithoutFilter)
        }
        FilterMode::None => Ok(Selected::default()),
        FilterMode::Classic => classic(None),
        FilterMode::Ebpf => {
            let ebpf = Arc::new(EbpfFilter::load(rules)?);
            Ok(Selected {
                filter: Some(ebpf.clone()),
                ebpf: Some(ebpf),
                notice: None,
            })
        }
        FilterMode::Auto => match EbpfFilter::load(rules) {
            Ok(ebpf) => {
                let ebpf = Arc::new(ebpf);
                Ok(Selected {
                    filter: Some(ebpf.clone()),
                    ebpf: Some(ebpf),
                    notice: None,
                })
            }
            Err(err) => classic(Some(format!(
                "{err}; falling back to classic BPF, whose reject counts are unknown"
            ))),
        },
    }
}
