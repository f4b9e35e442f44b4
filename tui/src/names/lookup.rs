//! One reverse lookup through a real DNS resolver: hickory-resolver, configured from
//! `/etc/resolv.conf` like the C library's resolver, asynchronous, and reporting each answer's
//! time to live (a name's record TTL, a negative answer's SOA TTL), which `getnameinfo` hides.

use std::future::Future;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context;
use hickory_resolver::TokioResolver;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::rr::RData;

use super::cache::Answer;

/// Something that can look an address's name up: the real resolver, or a test's stand-in.
pub trait Reverse: Send + Sync + 'static {
    /// The PTR answer for `ip`.
    fn reverse(&self, ip: IpAddr) -> impl Future<Output = Answer> + Send;
}

/// The system's DNS servers, asked through hickory-resolver.
pub struct Dns {
    resolver: TokioResolver,
}

impl Dns {
    /// A resolver configured from `/etc/resolv.conf` (servers, `timeout`, `attempts`).
    ///
    /// Must run inside a tokio runtime, whose tasks then carry its queries.
    pub fn from_system() -> anyhow::Result<Self> {
        let mut builder = TokioResolver::builder_tokio()
            .context("reading the resolver configuration (/etc/resolv.conf)")?;
        // The name cache keeps answers with their TTLs; a second cache inside the resolver
        // would only hold the same records twice.
        builder.options_mut().cache_size = 0;
        let resolver = builder.build().context("starting the DNS resolver")?;
        Ok(Self { resolver })
    }
}

impl Reverse for Dns {
    async fn reverse(&self, ip: IpAddr) -> Answer {
        match self.resolver.reverse_lookup(ip).await {
            Ok(lookup) => {
                let ttl = lookup
                    .valid_until()
                    .saturating_duration_since(Instant::now());
                lookup
                    .answers()
                    .iter()
                    .find_map(|record| match &record.data {
                        RData::PTR(ptr) => Some(ptr.0.to_ascii()),
                        _ => None,
                    })
                    .map_or(Answer::NoName(Some(ttl)), |name| Answer::Name(name, ttl))
            }
            Err(NetError::Dns(DnsError::NoRecordsFound(NoRecords { negative_ttl, .. }))) => {
                Answer::NoName(negative_ttl.map(|secs| Duration::from_secs(secs.into())))
            }
            Err(_) => Answer::Failed,
        }
    }
}
