//! traffic-counter: who is using the network, per IP address and per flow, live.
//!
//! The binary stays thin: parse the command line, pick the interface, build the runtime and
//! hand off to headless mode. Libraries return typed errors; this is where they become one
//! line on stderr and an exit status.

mod cli;
mod headless;
mod snapshot_file;
mod summary;
mod units;

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use traffic_counter_capture::{CaptureError, iface};

fn main() -> ExitCode {
    let args = cli::Args::parse();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
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
    if !args.headless {
        anyhow::bail!(
            "the terminal UI is not part of this build yet; run with --headless (see --help)"
        );
    }
    let interface = match &args.interface {
        Some(name) => name.clone(),
        None => iface::default_interface().ok_or(CaptureError::NoDefaultInterface)?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the async runtime")?;
    runtime.block_on(headless::run(args, interface))
}
