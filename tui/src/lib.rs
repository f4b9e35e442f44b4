//! traffic-counter: who is using the network, per IP address and per flow, live.
//!
//! This crate is the product around the capture and filter libraries: the command line, the
//! terminal UI (state in [`app`], drawing in [`view`], the event loop in [`ui`]), headless mode,
//! and snapshot files. `main.rs` only calls [`main`].

pub mod app;
pub mod cli;
pub mod columns;
pub mod export;
pub mod fixture;
pub mod headless;
pub mod metrics;
pub mod names;
pub mod privilege;
pub mod ranking;
pub mod session;
pub mod snapshot_file;
pub mod summary;
pub mod ui;
pub mod units;
pub mod view;

use std::process::ExitCode;

use anyhow::Context;
use traffic_counter_capture::{CaptureError, iface};

/// Parses the command line, runs the terminal UI or headless mode, and turns errors into one
/// line on stderr and an exit status.
pub fn main() -> ExitCode {
    let args = cli::Args::parse_checked();
    // Log lines would scribble over the terminal UI; there, only RUST_LOG turns them on.
    let default_level = if args.headless { "info" } else { "off" };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level))
        .format_target(false)
        .format_timestamp(None)
        .init();
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("traffic-counter: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: cli::Args) -> anyhow::Result<ExitCode> {
    let interface = match (&args.read, &args.interface) {
        (Some(file), _) => file.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => iface::default_interface().ok_or(CaptureError::NoDefaultInterface)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the async runtime")?;
    if args.headless {
        runtime.block_on(headless::run(args, interface))
    } else {
        runtime.block_on(ui::run(args, interface))
    }
}
