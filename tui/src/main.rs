//! The `traffic-counter` binary: everything lives in the library; see `lib.rs`.

/// Large tables on huge pages: see `traffic_counter_capture::hugepages`.
#[global_allocator]
static ALLOCATOR: traffic_counter_capture::hugepages::HugePages =
    traffic_counter_capture::hugepages::HugePages;

fn main() -> std::process::ExitCode {
    traffic_counter::main()
}
