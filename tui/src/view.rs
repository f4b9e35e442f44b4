//! Drawing: `impl Widget for &App`. Views read the app and its snapshot and change nothing.
//!
//! Layout: three header lines (who, totals, tabs and warnings), the table or health view, and a
//! status line; the help overlay draws on top. Colour always repeats what the text says.

mod cells;
mod charts;
mod detail;
mod header;
mod health;
mod help;
mod rollups;
mod tables;

use std::time::{Duration, SystemTime};

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};
use traffic_counter_capture::snapshot::Timestamp;

use crate::app::{App, View};

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [top, body, status] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Min(1),
            Constraint::Length(1),
        ])
        .areas(area);
        header::render(self, top, buf);
        match self.view {
            View::Talkers | View::Flows if self.detail.is_some() => {
                if let Some(d) = &self.detail {
                    detail::render(self, d, body, buf);
                }
            }
            View::Talkers | View::Flows => {
                let [chart, table] =
                    Layout::vertical([Constraint::Length(self.chart_rows()), Constraint::Fill(1)])
                        .areas(body);
                charts::totals(self, chart, buf);
                if self.view == View::Talkers {
                    tables::talkers(self, table, buf);
                } else {
                    tables::flows(self, table, buf);
                }
            }
            View::Health => health::render(self, body, buf),
        }
        status_line(self, status, buf);
        if self.help {
            help::render(area, buf);
        }
    }
}

fn status_line(app: &App, area: Rect, buf: &mut Buffer) {
    let line = if let Some(text) = &app.prompt {
        Line::from(vec![
            Span::styled("/", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(text.clone()),
            Span::styled("_", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            Span::styled(
                "   Enter apply  Esc cancel  (address, name, CIDR, port or protocol)",
                Style::new().fg(Color::DarkGray),
            ),
        ])
    } else if let Some((message, error)) = &app.status {
        let style = if *error {
            Style::new().fg(Color::Red)
        } else {
            Style::new().fg(Color::Green)
        };
        Line::from(Span::styled(message.clone(), style))
    } else {
        let keys = if app.detail.is_some() {
            "Esc back  q quit  ? help  Space pause  b units  w write"
        } else {
            "q quit  ? help  Tab view  Enter detail  g roll-up  </> sort  r reverse  / filter  \
             Space pause  b units  w write  x exclude"
        };
        Line::from(Span::styled(keys, Style::new().fg(Color::DarkGray)))
    };
    Paragraph::new(line).render(area, buf);
}

/// `1h02m03s`, `4m05s`, `7s`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, m, sec) => format!("{m}m{sec:02}s"),
        (h, m, sec) => format!("{h}h{m:02}m{sec:02}s"),
    }
}

/// How long before `now` a packet time was.
pub fn ago(then: Timestamp, now: SystemTime) -> String {
    duration(
        now.duration_since(then.to_system_time())
            .unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests;
