//! Kafka's varints, in one place: unsigned (the lengths and tags of
//! flexible protocol versions and coordinator records) and zig-zag (record
//! fields), 7 bits per byte, low bits first.

use bytes::BufMut;

/// Writes `value` as an unsigned varint.
pub fn put_unsigned(out: &mut impl BufMut, mut value: u64) {
    while value >= 0x80 {
        out.put_u8((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

/// Reads an unsigned varint: its value and the bytes it used; `None` if
/// `bytes` ends first or it runs past 10 bytes.
pub fn read_unsigned(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw, i + 1));
        }
    }
    None
}

/// Writes `value` as a zig-zag varint.
pub fn put_zigzag(out: &mut impl BufMut, value: i64) {
    put_unsigned(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Reads a zig-zag varint: its value and the bytes it used.
pub fn read_zigzag(bytes: &[u8]) -> Option<(i64, usize)> {
    let (raw, used) = read_unsigned(bytes)?;
    let value = i64::try_from(raw >> 1).ok()? ^ -i64::try_from(raw & 1).ok()?;
    Some((value, used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for value in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i64::from(i32::MAX),
            i64::MIN,
            i64::MAX,
        ] {
            let mut out = Vec::new();
            put_zigzag(&mut out, value);
            assert_eq!(read_zigzag(&out), Some((value, out.len())));
        }
        for value in [
            0u64,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_unsigned(&mut out, value);
            assert_eq!(read_unsigned(&out), Some((value, out.len())));
        }
        // Kafka's encodings: 300 is [0xac, 0x02]; -1 zig-zags to 1.
        let mut out = Vec::new();
        put_unsigned(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        assert_eq!(read_zigzag(&[0x01]), Some((-1, 1)));
        assert_eq!(read_unsigned(&[0x80]), None);
        assert_eq!(read_unsigned(&[0xff; 11]), None);
    }
}
