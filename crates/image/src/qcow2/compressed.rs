//! Compressed clusters (qcow2.rst "Compressed Clusters Descriptor"): raw deflate (RFC 1951,
//! no zlib header) or zstd, decompressed into exactly one cluster. The output buffer is the
//! bound, so a "zip bomb" cluster costs at most one cluster of memory and time proportional
//! to its (bounded) compressed input.

use flate2::{Decompress, FlushDecompress, Status};

use super::details::Compression;

/// Largest zstd window accepted: four times the largest cluster. An honest frame for one
/// cluster never needs more than the cluster; this bounds the decoder's allocation.
pub const MAX_ZSTD_WINDOW: u64 = 8 << 20;

/// Decompresses `input` into `out` (one cluster), which must be filled exactly; trailing
/// input is allowed (the descriptor rounds the compressed length up to sectors).
pub fn decompress(kind: Compression, input: &[u8], out: &mut [u8]) -> Result<(), String> {
    match kind {
        Compression::Deflate => inflate(input, out),
        Compression::Zstd => unzstd(input, out),
    }
}

fn inflate(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    let mut d = Decompress::new(false);
    // Each pass either consumes input or produces output, so the loop ends within
    // input.len() + out.len() passes; the guard makes that explicit.
    for _ in 0..=input.len() + out.len() {
        let (i, o) = (d.total_in() as usize, d.total_out() as usize);
        if o == out.len() {
            return Ok(());
        }
        let status = d
            .decompress(&input[i..], &mut out[o..], FlushDecompress::Finish)
            .map_err(|e| format!("deflate data is invalid ({e})"))?;
        let progressed = d.total_in() as usize != i || d.total_out() as usize != o;
        if d.total_out() as usize == out.len() {
            return Ok(());
        }
        if status == Status::StreamEnd || !progressed {
            return Err(format!(
                "deflate data ends after {} of {} bytes of the cluster",
                d.total_out(),
                out.len()
            ));
        }
    }
    Err("deflate data makes no progress".into())
}

fn unzstd(input: &[u8], out: &mut [u8]) -> Result<(), String> {
    use zstd::stream::raw::{Decoder, InBuffer, Operation, OutBuffer};
    use zstd::zstd_safe::DParameter;
    let invalid = |e: std::io::Error| format!("zstd data is invalid ({e})");
    let mut dec = Decoder::new().map_err(invalid)?;
    dec.set_parameter(DParameter::WindowLogMax(MAX_ZSTD_WINDOW.ilog2()))
        .map_err(invalid)?;
    let want = out.len();
    let mut src = InBuffer::around(input);
    let mut dst = OutBuffer::around(out);
    // Each pass either consumes input or produces output, so the loop ends within
    // input.len() + out.len() passes; the guard makes that explicit.
    for _ in 0..=input.len() + want {
        let (i, o) = (src.pos(), dst.pos());
        if o == want {
            return Ok(());
        }
        let left = dec.run(&mut src, &mut dst).map_err(invalid)?;
        if dst.pos() == want {
            return Ok(());
        }
        if left == 0 || (src.pos() == i && dst.pos() == o) {
            return Err(format!(
                "zstd data ends after {} of {want} bytes of the cluster",
                dst.pos()
            ));
        }
    }
    Err("zstd data makes no progress".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression as Level;
    use flate2::write::DeflateEncoder;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = DeflateEncoder::new(Vec::new(), Level::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn raw_deflate_fills_one_cluster_and_ignores_trailing_bytes() {
        let data: Vec<u8> = (0..65536u32).map(|i| (i % 7) as u8).collect();
        let mut input = deflate(&data);
        input.extend([0xEE; 300]); // the rest of the last sector
        let mut out = vec![0u8; 65536];
        decompress(Compression::Deflate, &input, &mut out).unwrap();
        assert_eq!(out, data);
    }

    #[test]
    fn a_bomb_stops_at_one_cluster() {
        // 64 MiB of zeros deflates to ~64 KiB; only one 4 KiB cluster is ever produced.
        let input = deflate(&vec![0u8; 64 << 20]);
        let mut out = vec![1u8; 4096];
        decompress(Compression::Deflate, &input, &mut out).unwrap();
        assert!(out.iter().all(|&b| b == 0));
    }

    #[test]
    fn short_or_garbage_data_is_an_error() {
        let input = deflate(&[5u8; 1000]);
        let mut out = vec![0u8; 4096];
        let e = decompress(Compression::Deflate, &input, &mut out).unwrap_err();
        assert!(e.contains("1000 of 4096"), "{e}");
        assert!(decompress(Compression::Deflate, &[0xFF; 64], &mut out).is_err());
        assert!(decompress(Compression::Deflate, &[], &mut out).is_err());
        assert!(decompress(Compression::Zstd, &[0xFF; 64], &mut out).is_err());
        assert!(decompress(Compression::Zstd, &[], &mut out).is_err());
    }

    #[test]
    fn zstd_frames_decode_and_stop_at_one_cluster() {
        let data: Vec<u8> = (0..8192u32).map(|i| (i / 3) as u8).collect();
        let frame = zstd::bulk::compress(&data, 1).unwrap();
        let mut out = vec![0u8; 8192];
        decompress(Compression::Zstd, &frame, &mut out).unwrap();
        assert_eq!(out, data);
        let mut half = vec![0u8; 4096];
        decompress(Compression::Zstd, &frame, &mut half).unwrap();
        assert_eq!(half, data[..4096]);
        let mut more = vec![0u8; 16384];
        assert!(decompress(Compression::Zstd, &frame, &mut more).is_err());
    }
}
