//! Rate charts: totals over the last minutes above the talkers and flows tables, each worker's
//! packets and drops on the health view, and a talker's or flow's two directions in its
//! detail view. Every chart names its quantity and its scale in text, so no line is told
//! apart by colour alone.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph, Sparkline, Widget,
};

use crate::app::App;
use crate::app::history::{SPAN, Series};
use crate::units::{self, Units};

/// How a chart's values read.
#[derive(Clone, Copy)]
pub(super) enum Scale {
    /// Bytes per second, shown in the app's units.
    Rate(Units),
    /// Packets (or drops) per second.
    PerSecond,
}

impl Scale {
    fn label(self, v: f64) -> String {
        match self {
            Self::Rate(units) => units::rate(v, units),
            Self::PerSecond => format!("{}/s", units::count(v)),
        }
    }
}

/// The time a chart covers: whole minutes from one up to the history's span, enough to hold
/// `series` ending at `now`.
fn span(series: &[(f64, f64)], now: f64) -> f64 {
    let covered = series.first().map_or(0.0, |(t, _)| now - t);
    ((covered / 60.0).ceil() * 60.0).clamp(60.0, SPAN.as_secs_f64())
}

/// `-10m`, `-90s`.
fn ago_label(secs: f64) -> String {
    if secs >= 120.0 {
        format!("-{:.0}m", secs / 60.0)
    } else {
        format!("-{secs:.0}s")
    }
}

/// A line chart of `series` (seconds since start, value per second) ending at `now`, titled
/// with the quantity, its latest value and its peak.
pub(super) fn rate_chart(
    title: &str,
    series: &[(f64, f64)],
    now: f64,
    scale: Scale,
    colour: Color,
    area: Rect,
    buf: &mut Buffer,
) {
    let span = span(series, now);
    let points: Vec<(f64, f64)> = series
        .iter()
        .filter(|(t, _)| *t >= now - span)
        .map(|&(t, v)| (t - now, v))
        .collect();
    let peak = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let top = if peak > 0.0 { peak * 1.1 } else { 1.0 };
    let title = Line::from(match points.last() {
        Some(&(_, last)) => vec![
            Span::raw(format!(" {title} ")),
            Span::styled(
                format!("now {} ", scale.label(last)),
                Style::new().fg(colour),
            ),
            Span::raw(format!("peak {} ", scale.label(peak))),
        ],
        // A rate needs two snapshots a second apart.
        None => vec![Span::raw(format!(" {title} (from the next snapshot) "))],
    });
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(Style::new().fg(colour))
        .data(&points);
    let grey = Style::new().fg(Color::DarkGray);
    Chart::new(vec![dataset])
        .block(Block::new().borders(Borders::TOP).title(title))
        .x_axis(
            Axis::default()
                .bounds([-span, 0.0])
                .labels([ago_label(span), "now".to_owned()])
                .style(grey),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, top])
                .labels(["0".to_owned(), scale.label(top)])
                .style(grey),
        )
        .render(area, buf);
}

/// The totals chart above the talkers and flows tables: bits (or bytes) per second, and
/// packets per second beside it when the terminal is wide enough.
pub(super) fn totals(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    let now = s.duration.as_secs_f64();
    let rate = app.history.bytes_per_sec(now);
    let name = match app.units {
        Units::Bits => "Total bits/s",
        Units::Bytes => "Total bytes/s",
    };
    let scale = Scale::Rate(app.units);
    if area.width >= 100 {
        let [left, right] = Layout::horizontal([Constraint::Percentage(62), Constraint::Fill(1)])
            .spacing(2)
            .areas(area);
        rate_chart(name, &rate, now, scale, Color::Cyan, left, buf);
        let packets = app.history.packets_per_sec(now);
        let pps = Scale::PerSecond;
        rate_chart("Packets/s", &packets, now, pps, Color::Green, right, buf);
    } else {
        rate_chart(name, &rate, now, scale, Color::Cyan, area, buf);
    }
}

/// Sparkline values for the last `width` points of a series, scaled to whole numbers.
fn spark(series: &Series, width: u16) -> Vec<u64> {
    let skip = series.len().saturating_sub(usize::from(width));
    series[skip..].iter().map(|p| p.1.round() as u64).collect()
}

/// Each worker's packets per second and ring drops per second over time, one line a worker,
/// with the latest values and the drops' peak in text.
pub(super) fn workers(app: &App, area: Rect, buf: &mut Buffer) {
    let Some(s) = &app.shown else { return };
    let now = s.duration.as_secs_f64();
    let block = Block::new()
        .borders(Borders::TOP)
        .title(" Workers over time: packets/s | drops/s ");
    let inner = block.inner(area);
    block.render(area, buf);
    for (i, w) in s.workers.iter().enumerate() {
        let y = inner.y + i as u16;
        if y >= inner.bottom() {
            break;
        }
        let row = Rect::new(inner.x, y, inner.width, 1);
        let [label, pps_line, pps_now, drops_line, drops_now] = Layout::horizontal([
            Constraint::Length(4),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Fill(1),
            Constraint::Length(16),
        ])
        .areas(row);
        Paragraph::new(format!("w{}", w.id)).render(label, buf);
        let packets = app.history.worker_packets_per_sec(i, now);
        Sparkline::default()
            .data(spark(&packets, pps_line.width))
            .style(Style::new().fg(Color::Green))
            .render(pps_line, buf);
        let latest = packets.last().map_or(0.0, |p| p.1);
        Paragraph::new(format!(" {:>8}", units::count(latest))).render(pps_now, buf);
        let drops = app.history.worker_drops_per_sec(i, now);
        let peak = drops.iter().map(|p| p.1).fold(0.0, f64::max);
        let style = if peak > 0.0 {
            Style::new().fg(Color::Red)
        } else {
            Style::new()
        };
        Sparkline::default()
            .data(spark(&drops, drops_line.width))
            .style(style)
            .render(drops_line, buf);
        Paragraph::new(Span::styled(
            format!(" peak {:>6}/s", units::count(peak)),
            style,
        ))
        .render(drops_now, buf);
    }
}
