//! The key map: which key means which [`Action`], as the help overlay lists them.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::app::{Action, View};

/// The action a key press asks for; `prompt` is whether the filter prompt has the keyboard.
pub fn action(key: KeyEvent, prompt: bool) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    if prompt {
        return match key.code {
            KeyCode::Enter => Some(Action::ApplyFilter),
            KeyCode::Esc => Some(Action::Escape),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char(c) => Some(Action::Input(c)),
            _ => None,
        };
    }
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?' | 'h') | KeyCode::F(1) => Action::ToggleHelp,
        KeyCode::Esc => Action::Escape,
        KeyCode::Enter => Action::OpenDetail,
        KeyCode::Tab => Action::NextView,
        KeyCode::Char('1') => Action::ShowView(View::Talkers),
        KeyCode::Char('2') => Action::ShowView(View::Flows),
        KeyCode::Char('3') => Action::ShowView(View::Health),
        KeyCode::Up | KeyCode::Char('k') => Action::Move(-1),
        KeyCode::Down | KeyCode::Char('j') => Action::Move(1),
        KeyCode::PageUp => Action::Page(-1),
        KeyCode::PageDown => Action::Page(1),
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Char('<') => Action::Sort(-1),
        KeyCode::Char('>') => Action::Sort(1),
        KeyCode::Char('r') => Action::Reverse,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char(' ' | 'p') => Action::TogglePause,
        KeyCode::Char('b') => Action::ToggleUnits,
        KeyCode::Char('w') => Action::WriteSnapshot,
        KeyCode::Char('x') => Action::ExcludeSelected,
        KeyCode::Char('g') => Action::CycleRollup,
        KeyCode::Char('n') => Action::ToggleNames,
        KeyCode::Char('N') => Action::TogglePortNames,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn every_documented_key_maps() {
        for code in [
            KeyCode::Char('q'),
            KeyCode::Char('?'),
            KeyCode::Char('h'),
            KeyCode::F(1),
            KeyCode::Esc,
            KeyCode::Enter,
            KeyCode::Tab,
            KeyCode::Char('1'),
            KeyCode::Char('2'),
            KeyCode::Char('3'),
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Char('j'),
            KeyCode::Char('k'),
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::Char('<'),
            KeyCode::Char('>'),
            KeyCode::Char('r'),
            KeyCode::Char('/'),
            KeyCode::Char(' '),
            KeyCode::Char('p'),
            KeyCode::Char('b'),
            KeyCode::Char('w'),
            KeyCode::Char('x'),
            KeyCode::Char('g'),
            KeyCode::Char('n'),
            KeyCode::Char('N'),
        ] {
            assert!(action(press(code), false).is_some(), "{code:?}");
        }
        assert!(action(press(KeyCode::Char('z')), false).is_none());
    }

    #[test]
    fn the_prompt_takes_typing_but_ctrl_c_still_quits() {
        assert!(matches!(
            action(press(KeyCode::Char('q')), true),
            Some(Action::Input('q'))
        ));
        assert!(matches!(
            action(press(KeyCode::Enter), true),
            Some(Action::ApplyFilter)
        ));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert!(matches!(action(ctrl_c, true), Some(Action::Quit)));
        assert!(matches!(action(ctrl_c, false), Some(Action::Quit)));
    }
}
