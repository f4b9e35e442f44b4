//! Checks a snapshot file's JSON against a corpus's expected counts, shared by the binary's
//! test files (each includes it with `#[path]`).

use serde_json::Value;
use testlab::corpus::Corpus;

/// Every talker of `doc` is one of the corpus's, with its exact packets and bytes each way,
/// and none is missing.
pub fn assert_talkers(doc: &Value, corpus: &Corpus) {
    let talkers = doc["talkers"].as_array().unwrap();
    assert_eq!(talkers.len(), corpus.talkers.len());
    for t in talkers {
        let ip: std::net::IpAddr = t["ip"].as_str().unwrap().parse().unwrap();
        let want = &corpus.talkers[&ip];
        assert_eq!(t["packets_sent"], want.packets_sent, "{ip}");
        assert_eq!(t["bytes_sent"], want.bytes_sent, "{ip}");
        assert_eq!(t["packets_received"], want.packets_received, "{ip}");
        assert_eq!(t["bytes_received"], want.bytes_received, "{ip}");
    }
}
