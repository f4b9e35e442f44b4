//! Any bytes as one `TPACKET_V3` ring block, descriptor first, walked exactly as a worker walks
//! a block the kernel handed over: the walk never panics or loops, yields at most the frames
//! the descriptor claims, every frame's data lies inside the block past the descriptor, and
//! each frame parses (or is refused) without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_counter_capture::parse::parse_frame;
use traffic_counter_capture::walk_block;

/// `sizeof(struct tpacket_block_desc)`: no frame may start inside it.
const DESC_LEN: usize = 48;

fuzz_target!(|block: &[u8]| {
    let range = block.as_ptr_range();
    let mut frames = 0u32;
    let claimed = walk_block(block, |frame| {
        frames += 1;
        let data = frame.data.as_ptr_range();
        assert!(
            data.start >= range.start.wrapping_add(DESC_LEN) && data.end <= range.end,
            "frame data outside the block"
        );
        let _ = parse_frame(frame.data, frame.wire_len, frame.offloaded);
    });
    assert!(frames <= claimed, "{frames} frames from a block claiming {claimed}");
});
