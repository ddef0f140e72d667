//! The field encoding of Kafka's coordinator records: big-endian integers,
//! int16-length strings, int32-length bytes, and for flexible versions
//! unsigned-varint lengths and tagged fields. Shared by the group and
//! transaction records.

use bytes::{BufMut, Bytes, BytesMut};

use crate::varint;

/// Writes an int16-length string. Kafka's strings hold at most 32767
/// bytes; a longer one (a huge client id inside a member id) is cut at a
/// character boundary, so the record still decodes.
pub fn put_string(out: &mut BytesMut, s: &str) {
    let s = cut(s);
    out.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
    out.put_slice(s.as_bytes());
}

/// `s` cut to the 32767 bytes a record string holds, at a character
/// boundary.
fn cut(s: &str) -> &str {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Writes a nullable int16-length string (-1 for null).
pub fn put_nullable_string(out: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_string(out, s),
        None => out.put_i16(-1),
    }
}

/// Writes int32-length bytes.
pub fn put_bytes(out: &mut BytesMut, b: &[u8]) {
    out.put_i32(i32::try_from(b.len()).unwrap_or(i32::MAX));
    out.put_slice(b);
}

/// Writes an unsigned varint (a flexible version's lengths and tags).
pub fn put_uvarint(out: &mut BytesMut, value: u32) {
    varint::put_unsigned(out, u64::from(value));
}

/// Writes a compact (uvarint length + 1) string, cut like [`put_string`].
pub fn put_compact_string(out: &mut BytesMut, s: &str) {
    let s = cut(s);
    put_uvarint(out, u32::try_from(s.len() + 1).unwrap_or(u32::MAX));
    out.put_slice(s.as_bytes());
}

/// Writes a compact array length (`None` is a null array).
pub fn put_compact_len(out: &mut BytesMut, len: Option<usize>) {
    put_uvarint(
        out,
        len.map_or(0, |n| u32::try_from(n + 1).unwrap_or(u32::MAX)),
    );
}

/// Writes one tagged field: tag, size, data.
pub fn put_tagged(out: &mut BytesMut, tag: u32, data: &[u8]) {
    put_uvarint(out, tag);
    put_uvarint(out, u32::try_from(data.len()).unwrap_or(u32::MAX));
    out.put_slice(data);
}

/// A bounds-checked big-endian reader over a record's bytes; every read
/// past the end is an error, never a panic.
pub struct Reader<'a>(pub &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("record is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// An int8.
    ///
    /// # Errors
    /// Too few bytes.
    pub fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    /// An int16.
    ///
    /// # Errors
    /// Too few bytes.
    pub fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// An int32.
    ///
    /// # Errors
    /// Too few bytes.
    pub fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An int64.
    ///
    /// # Errors
    /// Too few bytes.
    pub fn i64(&mut self) -> Result<i64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }

    /// A nullable string.
    ///
    /// # Errors
    /// Too few bytes, or not UTF-8.
    pub fn nullable_string(&mut self) -> Result<Option<String>, String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(None);
        }
        let bytes = self.take(usize::try_from(len).unwrap_or(0))?;
        String::from_utf8(bytes.to_vec())
            .map(Some)
            .map_err(|_| "string is not UTF-8".into())
    }

    /// A string.
    ///
    /// # Errors
    /// Too few bytes, null, or not UTF-8.
    pub fn string(&mut self) -> Result<String, String> {
        self.nullable_string()?
            .ok_or_else(|| "null where a string is required".into())
    }

    /// An unsigned varint.
    ///
    /// # Errors
    /// Too few bytes.
    pub fn uvarint(&mut self) -> Result<u32, String> {
        let (value, used) = varint::read_unsigned(self.0).ok_or("record is truncated")?;
        self.take(used)?;
        u32::try_from(value).map_err(|_| "varint is too large".into())
    }

    /// A compact array's length (`None` for a null array).
    ///
    /// # Errors
    /// Too few bytes.
    pub fn compact_len(&mut self) -> Result<Option<usize>, String> {
        Ok(match self.uvarint()? {
            0 => None,
            n => Some(usize::try_from(n - 1).unwrap_or(usize::MAX)),
        })
    }

    /// An array's length, compact in a `flexible` version, int32 before
    /// (`None` for a null array).
    ///
    /// # Errors
    /// Too few bytes.
    pub fn array_len(&mut self, flexible: bool) -> Result<Option<usize>, String> {
        if flexible {
            self.compact_len()
        } else {
            Ok(usize::try_from(self.i32()?).ok())
        }
    }

    /// A compact string.
    ///
    /// # Errors
    /// Too few bytes, null, or not UTF-8.
    pub fn compact_string(&mut self) -> Result<String, String> {
        let len = self
            .compact_len()?
            .ok_or("null where a string is required")?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| "string is not UTF-8".into())
    }

    /// The tagged fields that end a flexible struct, as (tag, data).
    ///
    /// # Errors
    /// Too few bytes.
    pub fn tagged_fields(&mut self) -> Result<Vec<(u32, &'a [u8])>, String> {
        let count = self.uvarint()?;
        let mut fields = Vec::new();
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).unwrap_or(usize::MAX);
            fields.push((tag, self.take(size)?));
        }
        Ok(fields)
    }

    /// Bytes (null reads as empty).
    ///
    /// # Errors
    /// Too few bytes.
    pub fn bytes(&mut self) -> Result<Bytes, String> {
        let len = self.i32()?;
        if len < 0 {
            return Ok(Bytes::new());
        }
        Ok(Bytes::copy_from_slice(
            self.take(usize::try_from(len).unwrap_or(0))?,
        ))
    }
}
