//! The help overlay: every key, as htop's F1 screen lists them.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Clear, Row, Table, Widget};

/// Every key and what it does.
pub const KEYS: [(&str, &str); 17] = [
    ("q, Ctrl-C", "quit"),
    ("?, h, F1", "this help; Esc closes it"),
    ("Tab, 1 2 3", "talkers, flows, health"),
    ("Up Down j k", "move the selection"),
    ("PgUp PgDn Home End", "move by a page, to the ends"),
    ("< >", "sort by the previous / next column"),
    ("r", "reverse the order"),
    ("Enter", "detail of the selected talker or flow"),
    ("g", "talkers by address, by prefix, by group"),
    ("/", "filter: address, name, CIDR, port or protocol"),
    ("Space, p", "pause: freeze the tables, counting goes on"),
    ("b", "rates in bits or bytes"),
    ("w", "write what is shown to a file"),
    ("x", "exclude the selected address (eBPF filter)"),
    ("n", "host names or addresses"),
    ("N", "service names or port numbers"),
    ("Esc", "close help, prompt or detail, else clear filter"),
];

pub(super) fn render(area: Rect, buf: &mut Buffer) {
    let [v] = Layout::vertical([Constraint::Length(KEYS.len() as u16 + 3)])
        .flex(Flex::Center)
        .areas(area);
    let [rect] = Layout::horizontal([Constraint::Length(72)])
        .flex(Flex::Center)
        .areas(v);
    Clear.render(rect, buf);
    let rows = KEYS.iter().map(|(k, what)| Row::new([*k, *what]));
    Table::new(rows, [Constraint::Length(20), Constraint::Min(10)])
        .header(Row::new(["Key", "Action"]).style(Style::new().add_modifier(Modifier::BOLD)))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Help: keys (Esc closes) "),
        )
        .render(rect, buf);
}
