//! The `traffic-counter` binary: everything lives in the library; see `lib.rs`.

fn main() -> std::process::ExitCode {
    traffic_counter::main()
}
