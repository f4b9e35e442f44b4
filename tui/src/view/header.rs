//! The three header lines: who and how, totals, and the view tabs with capture warnings.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use traffic_counter_capture::snapshot::{FilterKind, Source};

use crate::app::{App, View};
use crate::units;

pub(super) fn render(app: &App, area: Rect, buf: &mut Buffer) {
    let bold = Style::new().add_modifier(Modifier::BOLD);
    let mut who = vec![Span::styled("traffic-counter", bold)];
    let mut totals = Vec::new();
    if let Some(s) = &app.shown {
        let filter = match s.filter.kind {
            FilterKind::None => "none",
            FilterKind::Ebpf => "ebpf",
            FilterKind::Classic => "classic",
            FilterKind::Userspace => "userspace",
        };
        let how = match s.source {
            Source::Live => format!(
                "{} workers  fanout {}  filter {filter}  up",
                s.workers.len(),
                s.fanout.mode.name()
            ),
            Source::Pcap => "replay of pcap  capture time".to_owned(),
            Source::Pcapng => "replay of pcapng  capture time".to_owned(),
        };
        who.push(Span::raw(format!(
            "  {}  {how} {}",
            s.interface,
            super::duration(s.duration),
        )));
        let t = &s.totals;
        totals.push(Span::styled("Total", bold));
        // Most important first; what does not fit the width is left out.
        let segments = [
            format!(
                "  2s {} {} pps",
                units::rate(t.bytes_per_sec.get(0), app.units),
                units::count(t.packets_per_sec.get(0))
            ),
            format!(
                "  cum {} pkts {}",
                units::count(t.packets as f64),
                units::bytes(t.bytes)
            ),
            format!("  10s {}", units::rate(t.bytes_per_sec.get(1), app.units)),
            format!("  40s {}", units::rate(t.bytes_per_sec.get(2), app.units)),
        ];
        let mut used = 5;
        for segment in segments {
            if used + segment.len() <= usize::from(area.width) {
                used += segment.len();
                totals.push(Span::raw(segment));
            }
        }
    } else {
        who.push(Span::raw("  waiting for the first snapshot..."));
    }
    if app.ended {
        who.push(Span::styled("  replay finished", bold.fg(Color::Green)));
    }
    if app.paused {
        who.push(Span::styled(
            "  PAUSED",
            Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }

    let mut tabs = Vec::new();
    for (key, name, view) in [
        ("1", "Talkers", View::Talkers),
        ("2", "Flows", View::Flows),
        ("3", "Health", View::Health),
    ] {
        let style = if app.view == view {
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            Style::new()
        };
        tabs.push(Span::styled(format!(" {key} {name} "), style));
        tabs.push(Span::raw(" "));
    }
    if !app.filter.is_empty() {
        tabs.push(Span::styled(
            format!(" filter: {} ", app.filter.text()),
            Style::new().fg(Color::Cyan),
        ));
    }
    let t = app.trouble;
    if t.drops > 0 || t.freezes > 0 {
        tabs.push(Span::styled(
            format!(" WARNING ring drops +{} freezes +{} ", t.drops, t.freezes),
            Style::new()
                .fg(Color::White)
                .bg(Color::Red)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if t.rejects > 0 {
        tabs.push(Span::styled(
            format!(" filter rejects +{} ", t.rejects),
            Style::new().fg(Color::Yellow),
        ));
    }
    Paragraph::new(vec![Line::from(who), Line::from(totals), Line::from(tabs)]).render(area, buf);
}
