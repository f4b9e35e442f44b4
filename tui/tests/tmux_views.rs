//! End-to-end test of the views a person opens by key: `Enter` on a talker and on a flow
//! (and `Esc` back), and `g` through the roll-ups, in the real binary in tmux, in a fresh
//! network namespace fed the standard corpus, checking the screen against the corpus's exact
//! counts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::net::IpAddr;

use testlab::corpus::{self, Corpus};
use testlab::tmux::{self, Tmux};
use testlab::{Lab, ScratchDir};
use traffic_counter::app::rollup::PrefixLens;

const BIN: &str = env!("CARGO_BIN_EXE_traffic-counter");

#[test]
fn enter_opens_details_escape_goes_back_and_g_rolls_up() {
    let lab = Lab::new("views");
    let dir = ScratchDir::new("views");
    let exit_file = dir.join("exit-status");
    // Two disjoint groups: the corpus's IPv4 /24 and its IPv6 addresses.
    let command = format!(
        "ip netns exec {} {BIN} -i tc0 --workers 2 --flows --tick 200 \
         --group lab4=198.18.0.0/24 --group lab6=2001:db8::/32; {}",
        lab.capture_ns,
        tmux::after_exit(&exit_file)
    );
    let tmux = Tmux::start(&command, (120, 40));
    tmux.wait_for("the header", |s| s.contains("traffic-counter  tc0"));

    let corpus = corpus::standard();
    lab.send(&corpus.frames);
    let n = corpus.talkers.len();
    tmux.wait_for("every talker", |s| s.contains(&format!("Talkers 1/{n} ")));

    talker_detail(&tmux, &corpus);
    roll_ups(&tmux, &corpus);
    flow_detail(&tmux, &corpus);

    tmux.keys(&["q"]);
    assert_eq!(tmux::exit_status(&exit_file), "0");
    tmux.assert_restored("q after the detail and roll-up views");
}

/// Enter on the first row opens its detail with the corpus's exact packets each way and its
/// flows; Esc goes back to the table.
fn talker_detail(tmux: &Tmux, corpus: &Corpus) {
    let n = corpus.talkers.len();
    // The first row: most bytes, ties by address.
    let (top, counts) = corpus
        .talkers
        .iter()
        .max_by(|a, b| {
            let bytes = |c: &corpus::TalkerCounts| c.bytes_sent + c.bytes_received;
            bytes(a.1).cmp(&bytes(b.1)).then(b.0.cmp(a.0))
        })
        .unwrap();
    let its_flows = corpus
        .flows
        .iter()
        .filter(|f| f.a.0 == *top || f.b.0 == *top)
        .count();
    let sent = format!("in {} packets;", counts.packets_sent);
    let received = format!("in {} packets;", counts.packets_received);
    let line = |screen: &str, name: &str| {
        screen
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_default()
            .to_owned()
    };
    tmux.keys(&["Enter"]);
    // The whole detail, drawn in one frame: title, counts, chart and flows. Waiting on all of
    // it keeps a half-redrawn pane (title new, body old) from being judged.
    tmux.wait_for(
        "the talker's detail with its counts, chart and flows",
        |s| {
            s.contains(&format!("Talker {top}  (Esc back)"))
                && s.contains(&format!("Its flows: {its_flows} "))
                && line(s, "Sent ").contains(&sent)
                && line(s, "Received ").contains(&received)
                && s.contains("Sent bits/s")
        },
    );
    tmux.keys(&["Escape"]);
    tmux.wait_for("the talkers table again", |s| {
        s.contains(&format!("Talkers 1/{n} ")) && !s.contains("(Esc back)")
    });
}

/// g: prefixes that add up to the corpus, Enter on one lists its addresses, Esc clears that,
/// then groups and back to addresses.
fn roll_ups(tmux: &Tmux, corpus: &Corpus) {
    let n = corpus.talkers.len();
    // g: one row per /24 or /64, and the rows add up to the corpus's packets each way.
    let lens = PrefixLens::default();
    let networks: BTreeSet<IpAddr> = corpus.talkers.keys().map(|&ip| lens.network(ip)).collect();
    tmux.keys(&["g"]);
    let balance = format!("and {} packets each way", corpus.packets);
    let screen = tmux.wait_for("the prefix roll-up, its rows and its balance", |s| {
        s.contains(&format!("Prefixes /24 /64 1/{} ", networks.len()))
            && s.contains("rows + other = totals")
            && s.contains(&balance)
            && s.contains("198.18.0.0/24")
    });

    // Enter on a prefix lists its addresses; Esc clears that filter.
    let first = screen
        .lines()
        .skip_while(|l| !l.starts_with("Address"))
        .nth(1)
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let net: ipnet::IpNet = first.parse().unwrap();
    let inside = corpus.talkers.keys().filter(|ip| net.contains(*ip)).count();
    tmux.keys(&["Enter"]);
    tmux.wait_for("the prefix's addresses", |s| {
        s.contains(&format!("filter: {first}")) && s.contains(&format!("Talkers 1/{inside} "))
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the filter to clear", |s| {
        s.contains(&format!("Talkers 1/{n} "))
    });

    // g twice more: groups, whose remainder is exact because they do not overlap.
    tmux.keys(&["g", "g"]);
    tmux.wait_for("the group roll-up, both groups and its balance", |s| {
        s.contains("Groups 1/2 ")
            && s.contains("lab4")
            && s.contains("lab6")
            && s.contains("groups + not in any group = totals")
    });
    tmux.keys(&["g"]);
    tmux.wait_for("addresses again", |s| {
        s.contains(&format!("Talkers 1/{n} "))
    });
}

/// A flow's detail names both endpoints and charts both directions.
fn flow_detail(tmux: &Tmux, corpus: &Corpus) {
    // A flow's detail names both endpoints.
    tmux.keys(&["2"]);
    tmux.wait_for("the flows view", |s| {
        s.contains(&format!("Flows 1/{} ", corpus.flows.len()))
    });
    tmux.keys(&["Enter"]);
    tmux.wait_for("the flow's detail with both directions charted", |s| {
        s.contains("A (opened)")
            && s.contains("(Esc back)")
            && s.contains("A>B bits/s")
            && s.contains("B>A bits/s")
    });
    tmux.keys(&["Escape"]);
    tmux.wait_for("the flows table again", |s| {
        s.contains(&format!("Flows 1/{} ", corpus.flows.len())) && !s.contains("(Esc back)")
    });
}
