//! Fixed-width integer fields at an offset of a byte slice: the one way every parser of the
//! workspace reads little- and big-endian fields. Reads never panic: the plain forms give 0
//! past the end (for callers that checked the length first), the `get_` forms give `None`.
//!
//! Written here rather than taken from `zerocopy` or `byteorder`: both read a field through a
//! slice the caller has already cut to size, so every parser would still need its own bounded
//! `get`; these functions are that bound, one line each (docs/DEPENDENCIES.md).

/// The `N` bytes at `off`, or `None` when they would pass the end of `b`.
fn field<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off.checked_add(N)?)?.try_into().ok()
}

macro_rules! readers {
    ($($get:ident, $plain:ident, $ty:ty, $from:ident, $doc:literal;)*) => {$(
        #[doc = concat!($doc, " at `off`; `None` when it would pass the end of `b`.")]
        pub fn $get(b: &[u8], off: usize) -> Option<$ty> {
            field(b, off).map(<$ty>::$from)
        }

        #[doc = concat!($doc, " at `off`; 0 when it would pass the end of `b`.")]
        pub fn $plain(b: &[u8], off: usize) -> $ty {
            $get(b, off).unwrap_or(0)
        }
    )*};
}

readers! {
    get_le16, le16, u16, from_le_bytes, "Little-endian u16";
    get_le32, le32, u32, from_le_bytes, "Little-endian u32";
    get_le64, le64, u64, from_le_bytes, "Little-endian u64";
    get_be16, be16, u16, from_be_bytes, "Big-endian u16";
    get_be32, be32, u32, from_be_bytes, "Big-endian u32";
    get_be64, be64, u64, from_be_bytes, "Big-endian u64";
}

/// 16 bytes as UUID text in the order they are stored (`8-4-4-4-12` lower-case hex digits),
/// as file systems and VHD footers keep them.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_both_orders_and_never_pass_the_end() {
        let b = [0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09];
        assert_eq!(le16(&b, 1), 0x0302);
        assert_eq!(be16(&b, 1), 0x0203);
        assert_eq!(le32(&b, 0), 0x0403_0201);
        assert_eq!(be32(&b, 5), 0x0607_0809);
        assert_eq!(le64(&b, 1), 0x0908_0706_0504_0302);
        assert_eq!(be64(&b, 0), 0x0102_0304_0506_0708);
        assert_eq!(get_be32(&b, 6), None);
        assert_eq!(be32(&b, 6), 0);
        assert_eq!(get_le64(&b, usize::MAX - 2), None);
        assert_eq!(le16(&[], 0), 0);
    }

    #[test]
    fn uuid_text_keeps_the_stored_order() {
        let b: [u8; 16] = std::array::from_fn(|i| i as u8 * 17);
        assert_eq!(uuid_text(&b), "00112233-4455-6677-8899-aabbccddeeff");
    }
}
