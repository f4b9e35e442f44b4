//! Any bytes as one `TPACKET_V3` ring block, descriptor first, walked exactly as a worker walks
//! a block the kernel handed over, with and without `PACKET_VNET_HDR`: the walk never panics or
//! loops, the frames it yields plus those it reports unreadable are exactly the frames the
//! descriptor announces, every frame's data lies inside the block past the descriptor, and
//! each frame parses (or is refused) without panicking, as Ethernet and as a headerless link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use traffic_counter_capture::parse::{LinkKind, parse_link_frame};
use traffic_counter_capture::{FrameWalker, walk_block};

/// `sizeof(struct tpacket_block_desc)`: no frame may start inside it.
const DESC_LEN: usize = 48;
/// `offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts)`.
const NUM_PKTS_OFFSET: usize = 12;

fuzz_target!(|block: &[u8]| {
    let range = block.as_ptr_range();
    let announced = block
        .get(NUM_PKTS_OFFSET..NUM_PKTS_OFFSET + 4)
        .map_or(0, |b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    for vnet_hdr in [false, true] {
        let mut walker = FrameWalker::over_block(block, vnet_hdr);
        let mut frames = 0u32;
        while let Some(frame) = walker.next_frame() {
            frames += 1;
            let data = frame.data.as_ptr_range();
            assert!(
                data.start >= range.start.wrapping_add(DESC_LEN) && data.end <= range.end,
                "frame data outside the block"
            );
            for link in [LinkKind::Ethernet, LinkKind::Ip] {
                if let Ok(packet) =
                    parse_link_frame(link, frame.data, frame.wire_len, frame.offloaded, frame.gso)
                {
                    assert!(packet.segments >= 1, "a packet standing for no packet");
                }
            }
        }
        let unreadable = walker.walked().unreadable;
        assert_eq!(
            u64::from(frames) + u64::from(unreadable),
            u64::from(announced),
            "frames read + unreadable != announced (vnet_hdr {vnet_hdr})"
        );
    }
    // The walk the fuzz-only entry point does is the walk without virtio headers.
    let mut frames = 0u32;
    let claimed = walk_block(block, |_| frames += 1);
    assert!(
        frames <= claimed,
        "{frames} frames from a block claiming {claimed}"
    );
});
