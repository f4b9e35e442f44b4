//! The detail of one talker or one flow (`Enter`; `Esc` goes back): what it is, when it was
//! seen, its totals and rates each way, a chart of each direction, and for a talker its flows
//! ordered like the flows view.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use traffic_counter_capture::Snapshot;
use traffic_counter_capture::snapshot::{Timestamp, WindowRates};

use super::cells::Cells;
use super::charts::{Scale, rate_chart};
use super::tables::{flow_grid, flow_texts, table_block};
use crate::app::App;
use crate::app::detail::{Detail, Target};
use crate::units::{self, Units};

pub(super) fn render(app: &App, detail: &Detail, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    let cells = Cells::new(app, s);
    let (title, info, names) = match detail.target {
        Target::Talker(ip) => (
            format!(" Talker {}  (Esc back) ", cells.address(ip)),
            talker_lines(app, detail, s),
            ["Sent", "Received"],
        ),
        Target::Flow(key) => (
            format!(
                " Flow {} {} => {}  (Esc back) ",
                cells.proto(key.proto),
                cells.endpoint(key.a.0, key.a.1, key.proto),
                cells.endpoint(key.b.0, key.b.1, key.proto)
            ),
            flow_lines(app, &cells, detail, s),
            ["A>B", "B>A"],
        ),
    };
    let chart_rows = (area.height / 3).clamp(5, 12);
    let [top, charts, rest] = Layout::vertical([
        Constraint::Length(info.len() as u16 + 1),
        Constraint::Length(chart_rows),
        Constraint::Fill(1),
    ])
    .areas(area);
    Paragraph::new(info)
        .block(table_block(title))
        .render(top, buf);

    let now = s.duration.as_secs_f64();
    let shown = detail.points.iter().filter(|p| p.at <= now);
    let out: Vec<(f64, f64)> = shown.clone().map(|p| (p.at, p.out)).collect();
    let back: Vec<(f64, f64)> = shown.map(|p| (p.at, p.back)).collect();
    let [left, right] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
        .spacing(2)
        .areas(charts);
    let scale = Scale::Rate(app.units);
    let unit = match app.units {
        Units::Bits => "bits/s",
        Units::Bytes => "bytes/s",
    };
    let out_name = format!("{} {unit}", names[0]);
    let back_name = format!("{} {unit}", names[1]);
    rate_chart(&out_name, &out, now, scale, Color::Cyan, left, buf);
    rate_chart(&back_name, &back, now, scale, Color::Magenta, right, buf);

    if let Target::Talker(_) = detail.target {
        if s.flows_enabled {
            let title = format!(" Its flows: {} ", detail.flow_count);
            let texts = flow_texts(&cells, s, &detail.flow_rows);
            flow_grid(app, texts, None, title, rest, buf);
        } else {
            Paragraph::new("Flows are not counted: start with --flows to list this talker's.")
                .block(table_block(" Its flows ".into()))
                .render(rest, buf);
        }
    }
}

/// `Name       text`: a bold label in an 11-wide column, then the text.
fn row(name: &str, text: String) -> Line<'static> {
    Line::from(vec![
        Span::styled(
            format!("{name:<11}"),
            Style::new().add_modifier(Modifier::BOLD),
        ),
        Span::raw(text),
    ])
}

/// `2027-01-15T07:55:00Z (5m00s ago)`.
fn seen(t: Timestamp, now: std::time::SystemTime) -> String {
    format!(
        "{} ({} ago)",
        humantime::format_rfc3339_seconds(t.to_system_time()),
        super::ago(t, now)
    )
}

/// `49.2 MiB in 100.0k packets; 2s 10.0 Mbit/s  10s 9.0 Mbit/s  40s 8.0 Mbit/s`.
fn direction(bytes: u64, packets: u64, rates: &WindowRates, units: Units) -> String {
    format!(
        "{} in {} packets;  2s {}  10s {}  40s {}",
        units::bytes(bytes),
        units::count(packets as f64),
        units::rate(rates.get(0), units),
        units::rate(rates.get(1), units),
        units::rate(rates.get(2), units),
    )
}

fn gone(what: &str) -> Line<'static> {
    Line::from(Span::styled(
        format!("Not in the {what} table now (evicted or idle): the chart keeps what was seen."),
        Style::new().fg(Color::Yellow),
    ))
}

fn talker_lines(app: &App, detail: &Detail, s: &Snapshot) -> Vec<Line<'static>> {
    let Some(t) = detail.talker(s) else {
        return vec![gone("talkers")];
    };
    let all = (2 * s.totals.bytes).max(1) as f64;
    vec![
        row("First seen", seen(t.first_seen, s.taken_at)),
        row("Last seen", seen(t.last_seen, s.taken_at)),
        row(
            "Sent",
            direction(
                t.bytes_sent,
                t.packets_sent,
                &t.sent_bytes_per_sec,
                app.units,
            ),
        ),
        row(
            "Received",
            direction(
                t.bytes_received,
                t.packets_received,
                &t.received_bytes_per_sec,
                app.units,
            ),
        ),
        row(
            "Share",
            format!(
                "{} of all bytes",
                super::cells::share((t.bytes_sent + t.bytes_received) as f64 / all).trim_start()
            ),
        ),
    ]
}

fn flow_lines(app: &App, cells: &Cells, detail: &Detail, s: &Snapshot) -> Vec<Line<'static>> {
    let Some(f) = detail.flow(s) else {
        return vec![gone("flows")];
    };
    // Each endpoint with its own totals, where the talkers table still holds it.
    let endpoint = |name: &str, ip, port| {
        let talker = s.talkers.iter().find(|t| t.ip == ip).map_or_else(
            || "not in the talkers table now".to_owned(),
            |t| {
                format!(
                    "as a talker: sent {}, received {}",
                    units::bytes(t.bytes_sent),
                    units::bytes(t.bytes_received)
                )
            },
        );
        row(
            name,
            format!("{}   {talker}", cells.endpoint(ip, port, f.proto)),
        )
    };
    vec![
        endpoint("A (opened)", f.a_ip, f.a_port),
        endpoint("B", f.b_ip, f.b_port),
        row("Protocol", cells.proto(f.proto)),
        row("First seen", seen(f.first_seen, s.taken_at)),
        row("Last seen", seen(f.last_seen, s.taken_at)),
        row(
            "A>B",
            direction(
                f.bytes_a_to_b,
                f.packets_a_to_b,
                &f.a_to_b_bytes_per_sec,
                app.units,
            ),
        ),
        row(
            "B>A",
            direction(
                f.bytes_b_to_a,
                f.packets_b_to_a,
                &f.b_to_a_bytes_per_sec,
                app.units,
            ),
        ),
    ]
}
