//! Ring walking over hand-built TPACKET_V3 blocks and software checksum completion.

use super::*;
use crate::wire::vnet::VnetHeader;

/// A frame to put in a fake block: status, packet type and bytes.
struct Fake<'a> {
    status: u32,
    pkttype: u8,
    bytes: &'a [u8],
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
}

/// Lays a TPACKET_V3 block out the way the kernel does: descriptor, then each frame's
/// header, `sockaddr_ll` and data at `tp_mac`, 16-byte aligned, with `reserve` bytes of
/// room (a virtio-net header) in front of the data.
fn fake_block(frames: &[Fake], reserve: usize) -> Vec<u8> {
    let mut b = vec![0u8; 8192];
    put_u32(&mut b, field::BLOCK_STATUS, libc::TP_STATUS_USER);
    put_u32(&mut b, field::NUM_PKTS, frames.len() as u32);
    put_u32(
        &mut b,
        field::OFFSET_TO_FIRST_PKT,
        field::BLOCK_HEADER_LEN as u32,
    );
    let mut at = field::BLOCK_HEADER_LEN;
    for (i, f) in frames.iter().enumerate() {
        let mac = (field::FRAME_HEADERS + reserve).next_multiple_of(16);
        let size = (mac + f.bytes.len()).next_multiple_of(16);
        let next = if i + 1 == frames.len() { 0 } else { size };
        put_u32(&mut b, at + field::TP_NEXT_OFFSET, next as u32);
        put_u32(&mut b, at + field::TP_SNAPLEN, f.bytes.len() as u32);
        put_u32(&mut b, at + field::TP_LEN, f.bytes.len() as u32);
        put_u32(&mut b, at + field::TP_STATUS, f.status);
        b[at + field::TP_MAC..at + field::TP_MAC + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
        b[at + field::SOCKADDR_LL + field::SLL_PKTTYPE] = f.pkttype;
        b[at + mac..at + mac + f.bytes.len()].copy_from_slice(f.bytes);
        if reserve > 0 {
            b[at + mac - reserve..at + mac].fill(0xee);
        }
        at += size;
    }
    put_u32(&mut b, field::BLK_LEN, at as u32);
    b
}

fn frames_of<'a>(block: &'a [u8], walk: BlockWalk<'_>) -> Vec<(u8, &'a [u8])> {
    walk.map(|f| {
        let f = f.unwrap();
        (f.pkttype, &block[f.mac..f.mac + f.snaplen])
    })
    .collect()
}

#[test]
fn a_block_is_walked_frame_by_frame_in_order() {
    let block = fake_block(
        &[
            Fake {
                status: 0,
                pkttype: libc::PACKET_HOST,
                bytes: &[1; 60],
            },
            Fake {
                status: libc::TP_STATUS_CSUMNOTREADY,
                pkttype: libc::PACKET_OUTGOING,
                bytes: &[2; 1514],
            },
            Fake {
                status: 0,
                pkttype: libc::PACKET_BROADCAST,
                bytes: &[3; 42],
            },
        ],
        0,
    );
    let walk = BlockWalk::new(&block, false).unwrap();
    let got = frames_of(&block, walk);
    assert_eq!(
        got,
        vec![
            (libc::PACKET_HOST, &[1u8; 60][..]),
            (libc::PACKET_OUTGOING, &[2u8; 1514][..]),
            (libc::PACKET_BROADCAST, &[3u8; 42][..]),
        ]
    );
}

#[test]
fn a_walk_stopped_midway_resumes_at_the_next_frame() {
    let fakes: Vec<Fake> = (0..5u8)
        .map(|i| Fake {
            status: 0,
            pkttype: libc::PACKET_HOST,
            bytes: std::slice::from_ref(&[10u8, 11, 12, 13, 14][i as usize]),
        })
        .collect();
    let block = fake_block(&fakes, 0);
    let mut walk = BlockWalk::new(&block, false).unwrap();
    let first: Vec<u8> = walk
        .by_ref()
        .take(2)
        .map(|f| block[f.unwrap().mac])
        .collect();
    let cursor = walk.cursor();
    let rest: Vec<u8> = BlockWalk::resume(&block, cursor, false)
        .map(|f| block[f.unwrap().mac])
        .collect();
    assert_eq!((first, rest), (vec![10, 11], vec![12, 13, 14]));
}

#[test]
fn with_a_vnet_header_the_frame_needs_room_for_it_in_front() {
    let block = fake_block(
        &[Fake {
            status: 0,
            pkttype: libc::PACKET_HOST,
            bytes: &[7; 100],
        }],
        VnetHeader::<&[u8]>::LEN,
    );
    let f = BlockWalk::new(&block, true)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(&block[f.mac - 10..f.mac], &[0xee; 10]);
    // A frame starting right after the headers has no room for one: refused with a
    // header, taken without.
    let mut tight = block.clone();
    let at = field::BLOCK_HEADER_LEN + field::TP_MAC;
    tight[at..at + 2].copy_from_slice(&(field::FRAME_HEADERS as u16).to_ne_bytes());
    assert_eq!(
        BlockWalk::new(&tight, true).unwrap().next(),
        Some(Err(RingError::BadFrameHeader))
    );
    assert!(BlockWalk::new(&tight, false)
        .unwrap()
        .next()
        .unwrap()
        .is_ok());
}

#[test]
fn an_empty_block_yields_nothing() {
    let block = fake_block(&[], 0);
    assert_eq!(BlockWalk::new(&block, false).unwrap().count(), 0);
}

#[test]
fn a_truncated_or_bogus_block_header_is_an_error_not_a_panic() {
    // Shorter than the descriptor.
    assert_eq!(
        BlockWalk::new(&[0u8; 10], false).unwrap_err(),
        RingError::BadBlockHeader
    );
    let good = fake_block(
        &[Fake {
            status: 0,
            pkttype: 0,
            bytes: &[1; 60],
        }],
        0,
    );
    // Block length past the block.
    let mut b = good.clone();
    put_u32(&mut b, field::BLK_LEN, 1 << 30);
    assert_eq!(
        BlockWalk::new(&b, false).unwrap_err(),
        RingError::BadBlockHeader
    );
    // First frame inside the descriptor, or past the end.
    for first in [0u32, 8, 1 << 20] {
        let mut b = good.clone();
        put_u32(&mut b, field::OFFSET_TO_FIRST_PKT, first);
        assert_eq!(
            BlockWalk::new(&b, false).unwrap_err(),
            RingError::BadBlockHeader,
            "first at {first}"
        );
    }
}

#[test]
fn bogus_frame_headers_end_the_walk_with_an_error() {
    let fakes = [
        Fake {
            status: 0,
            pkttype: 0,
            bytes: &[1; 60],
        },
        Fake {
            status: 0,
            pkttype: 0,
            bytes: &[2; 60],
        },
    ];
    let good = fake_block(&fakes, 0);
    let first = field::BLOCK_HEADER_LEN;
    type Spoil = Box<dyn Fn(&mut Vec<u8>)>;
    let cases: Vec<(&str, Spoil)> = vec![
        (
            "snaplen past the block",
            Box::new(move |b| put_u32(b, first + field::TP_SNAPLEN, u32::MAX)),
        ),
        (
            "mac inside the headers",
            Box::new(move |b| b[first + field::TP_MAC..first + field::TP_MAC + 2].fill(0)),
        ),
        (
            "next offset zero with frames left",
            Box::new(move |b| put_u32(b, first + field::TP_NEXT_OFFSET, 0)),
        ),
        (
            "next offset past the block",
            Box::new(move |b| put_u32(b, first + field::TP_NEXT_OFFSET, 1 << 28)),
        ),
        (
            "more frames counted than there are",
            Box::new(|b| put_u32(b, field::NUM_PKTS, u32::MAX)),
        ),
    ];
    for (what, spoil) in cases {
        let mut b = good.clone();
        spoil(&mut b);
        let results: Vec<_> = BlockWalk::new(&b, false).unwrap().take(100).collect();
        assert!(results.iter().any(|r| r.is_err()), "{what}: {results:?}");
        assert!(results.len() <= 3, "{what}: {results:?}");
        assert!(results.last().unwrap().is_err(), "{what}: {results:?}");
    }
}

#[test]
fn a_walk_over_random_bytes_never_panics_and_ends() {
    // A simple LCG: deterministic, no dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut b = vec![0u8; 512];
        for byte in b.iter_mut() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            *byte = (x >> 56) as u8;
        }
        // Small counts and offsets so the walk gets past the descriptor sometimes.
        b[field::NUM_PKTS] %= 8;
        b[field::NUM_PKTS + 1..field::NUM_PKTS + 4].fill(0);
        put_u32(&mut b, field::OFFSET_TO_FIRST_PKT, 48);
        put_u32(&mut b, field::BLK_LEN, 512);
        if let Ok(walk) = BlockWalk::new(&b, x & 1 == 0) {
            for f in walk.take(1000).flatten() {
                assert!(f.mac + f.snaplen <= b.len());
            }
        }
    }
}

/// The RFC 1071 sum of `data`, complemented.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame with an IPv4/TCP segment whose checksum field holds the
/// pseudo-header sum, as a sender using checksum offload leaves it.
fn partial_tcp_frame(payload: &[u8]) -> (Vec<u8>, u16) {
    let mut f = vec![0u8; 14];
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let tcp_len = 20 + payload.len();
    let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0];
    ip[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
    ip.extend_from_slice(&[198, 51, 100, 1, 198, 51, 100, 2]);
    f.extend_from_slice(&ip);
    let mut tcp = vec![0u8; 20];
    tcp[0..4].copy_from_slice(&[0x30, 0x39, 0, 9]);
    tcp[12] = 5 << 4;
    tcp[13] = 0x18;
    tcp.extend_from_slice(payload);
    // The full checksum, for comparison: pseudo-header then segment.
    let mut pseudo = vec![198, 51, 100, 1, 198, 51, 100, 2, 0, 6];
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    let full = checksum(&[pseudo.clone(), tcp.clone()].concat());
    // The partial one: the uncomplemented pseudo-header sum.
    let partial = !checksum(&pseudo);
    tcp[16..18].copy_from_slice(&partial.to_be_bytes());
    f.extend_from_slice(&tcp);
    (f, full)
}

#[test]
fn a_partial_tcp_checksum_is_completed_to_the_full_one() {
    for payload in [&b""[..], b"hello", b"odd length!", &[0xff; 1460][..]] {
        let (mut f, full) = partial_tcp_frame(payload);
        assert!(complete_partial_checksum(&mut f));
        assert_eq!(
            u16::from_be_bytes([f[14 + 20 + 16], f[14 + 20 + 17]]),
            full,
            "{} bytes",
            payload.len()
        );
    }
}

#[test]
fn checksum_completion_leaves_what_it_does_not_understand_alone() {
    let (f, _) = partial_tcp_frame(b"abc");
    // ARP, a total length past the frame, ICMP, and a frame cut short.
    let mut arp = f.clone();
    arp[12..14].copy_from_slice(&[0x08, 0x06]);
    let mut long = f.clone();
    long[16..18].copy_from_slice(&9999u16.to_be_bytes());
    let mut icmp = f.clone();
    icmp[14 + 9] = 1;
    for (what, mut frame) in [
        ("arp", arp),
        ("long", long),
        ("icmp", icmp),
        ("short", f[..30].to_vec()),
        ("empty", Vec::new()),
    ] {
        let before = frame.clone();
        assert!(!complete_partial_checksum(&mut frame), "{what}");
        assert_eq!(frame, before, "{what}");
    }
}

#[test]
fn options_out_of_range_and_missing_interfaces_are_named() {
    let e = PacketDevice::open_with(
        "lo",
        &PacketOptions {
            offload: false,
            queues: 0,
        },
    )
    .unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("use 1 to 16"), "{e}");
    let e = PacketDevice::open("nsnothere0").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("no interface nsnothere0"), "{e}");
    let e = PacketDevice::open("a/b").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
}
