//! Compressed grains of a stream-optimized extent: deflate in a zlib wrapper (RFC 1950), as
//! VMware and QEMU write them, inflated into a buffer of one grain. The buffer is the bound:
//! a grain whose stream would produce more is refused, so a "zip bomb" costs one grain of
//! memory and time proportional to its bounded input.

use flate2::{Decompress, FlushDecompress, Status};

/// Inflates `input` into `out` (one grain); returns the bytes produced. The stream must end
/// within `out`: one that would produce more than a grain is refused.
pub fn inflate(input: &[u8], out: &mut [u8]) -> Result<usize, String> {
    let mut d = Decompress::new(true);
    // Each pass either consumes input or produces output, so the loop ends within
    // input.len() + out.len() passes; the guard makes that explicit.
    for _ in 0..=input.len() + out.len() + 1 {
        let (i, o) = (d.total_in() as usize, d.total_out() as usize);
        if o == out.len() {
            // Full: the stream must end here, without one more byte.
            let mut extra = [0u8; 1];
            let status = d
                .decompress(&input[i..], &mut extra, FlushDecompress::None)
                .map_err(|e| format!("deflate data is invalid ({e})"))?;
            if d.total_out() as usize > o {
                return Err(format!(
                    "the grain inflates past one grain ({} bytes)",
                    out.len()
                ));
            }
            return match status {
                Status::StreamEnd => Ok(o),
                _ => Err(format!(
                    "deflate data does not end after one grain ({} bytes)",
                    out.len()
                )),
            };
        }
        let status = d
            .decompress(&input[i..], &mut out[o..], FlushDecompress::None)
            .map_err(|e| format!("deflate data is invalid ({e})"))?;
        if status == Status::StreamEnd {
            return Ok(d.total_out() as usize);
        }
        let progressed = d.total_in() as usize != i || d.total_out() as usize != o;
        if !progressed && d.total_out() as usize != out.len() {
            return Err(format!(
                "deflate data is cut short after {} bytes of output",
                d.total_out()
            ));
        }
    }
    Err("deflate data makes no progress".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn inflates_exactly_one_grain() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
        let mut out = vec![0u8; 4096];
        assert_eq!(inflate(&zlib(&data), &mut out), Ok(4096));
        assert_eq!(out, data);
    }

    #[test]
    fn refuses_a_grain_that_inflates_past_one_grain() {
        let mut out = vec![0u8; 4096];
        let e = inflate(&zlib(&[0u8; 4097]), &mut out).unwrap_err();
        assert!(e.contains("past one grain"), "{e}");
    }

    #[test]
    fn refuses_cut_and_invalid_streams() {
        let z = zlib(&[1u8; 4096]);
        let mut out = vec![0u8; 4096];
        assert!(inflate(&z[..z.len() / 2], &mut out).is_err());
        assert!(inflate(b"not zlib at all", &mut out).is_err());
        // Raw deflate without the zlib header is not what VMDK stores.
        assert!(inflate(&z[2..], &mut out).is_err());
    }
}
