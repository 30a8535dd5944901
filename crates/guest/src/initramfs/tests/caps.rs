//! Decompression caps: bombs are refused by the cap while streaming, in bounded memory.

use super::*;

/// An LZ4 legacy stream of `blocks` blocks of 8 MiB of zeros: about 33 KiB per block.
fn lz4_zero_bomb(blocks: usize) -> Vec<u8> {
    let mut v = vec![0x02, 0x21, 0x4C, 0x18];
    let mut first = sample();
    first.resize(8 << 20, 0);
    let head = lz4_flex::block::compress(&first);
    let zeros = lz4_flex::block::compress(&vec![0u8; 8 << 20]);
    for i in 0..blocks {
        let b = if i == 0 { &head } else { &zeros };
        v.extend_from_slice(&(b.len() as u32).to_le_bytes());
        v.extend_from_slice(b);
    }
    v
}

#[test]
fn lz4_bomb_refused_by_the_cap() {
    // 8 MiB is a cpio followed by zeros: fine.
    let ini = parse_all(&lz4_zero_bomb(1)).unwrap();
    assert_eq!(ini.archives[0].compression, Compression::Lz4Legacy);
    assert_eq!(ini.entries.len(), 4);
    // 129 blocks = 1032 MiB > 1 GiB: refused while streaming, in a few MiB of memory.
    let bomb = lz4_zero_bomb(129);
    assert!(bomb.len() < 5 << 20);
    match parse_all(&bomb).unwrap_err() {
        InitramfsError::TooLarge { limit, at } => {
            assert_eq!(limit, MAX_TOTAL_BYTES);
            assert_eq!(at.compression, Compression::Lz4Legacy);
        }
        e => panic!("{e}"),
    }
}

#[test]
fn lz4_block_bound() {
    let mut v = vec![0x02, 0x21, 0x4C, 0x18];
    v.extend_from_slice(&(9u32 << 20).to_le_bytes());
    assert!(matches!(
        parse_all(&v).unwrap_err(),
        InitramfsError::Decompress { method: "lz4", .. }
    ));
}
