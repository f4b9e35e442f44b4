//! A program under test, started with its stderr lines arriving on a channel, and killed on
//! drop if it is still running, so a failing test leaves no process behind.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::wait::wait_for;

/// A running program whose stderr lines arrive on a channel.
pub struct Running {
    child: Child,
    stderr: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `cmd` with piped stdout and stderr and waits up to 10 s for a stderr line
    /// containing `ready`.
    pub fn start(mut cmd: Command, ready: &str) -> Self {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("program starts");
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let running = Self { child, stderr: rx };
        running.wait_for_line(ready, Duration::from_secs(10));
        running
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for a stderr line containing `needle` and returns it.
    pub fn wait_for_line(&self, needle: &str, limit: Duration) -> String {
        let until = Instant::now() + limit;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stderr.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("no stderr line containing {needle:?} within {limit:?}")
                }
            }
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as i32, signal) };
        assert_eq!(rc, 0);
    }

    /// Waits for exit; returns the status code, stdout, and the stderr lines not yet read.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        let mut stdout = String::new();
        if let Some(mut out) = self.child.stdout.take() {
            out.read_to_string(&mut stdout).unwrap();
        }
        let status = self.child.wait().unwrap();
        let mut stderr = String::new();
        while let Ok(line) = self.stderr.recv_timeout(Duration::from_secs(2)) {
            stderr.push_str(&line);
            stderr.push('\n');
        }
        (status.code(), stdout, stderr)
    }

    /// Waits for exit within `limit`; returns the status code (-1 if killed by a signal) and
    /// the elapsed time.
    pub fn wait(mut self, limit: Duration) -> (i32, Duration) {
        let started = Instant::now();
        let pid = self.child.id();
        let status = wait_for(
            &format!("process {pid} to exit"),
            limit,
            || self.child.try_wait().unwrap(),
            Option::is_some,
        )
        .unwrap()
        .unwrap();
        (status.code().unwrap_or(-1), started.elapsed())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
