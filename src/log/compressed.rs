//! The records inside a compressed batch, read as a stream: gzip, snappy
//! (Kafka's xerial framing, or one raw block), lz4 frames and zstd. Each
//! record's body is skipped after its first few bytes, and at most one
//! snappy block is held, so a small batch that inflates to gigabytes costs
//! time, never memory.

use std::io::{self, BufRead, BufReader, Read, Write};

use super::batch::BatchError;
use crate::varint::read_zigzag as read_varint;

/// The most of a record body the rules read: attributes, then the
/// timestamp delta, offset delta and key length varints.
pub const RECORD_PREFIX: usize = 1 + 3 * 10;

/// How much of each record's body a walk hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bodies {
    /// The first [`RECORD_PREFIX`] bytes (what the record rules read).
    Prefix,
    /// Whole bodies, while their inflated sizes add up to at most `budget`
    /// bytes ([`BatchError::TooLarge`] past it, before anything is read).
    Whole {
        /// The most inflated record bytes the walk may hold.
        budget: usize,
    },
}

/// Inflates `payload` (the bytes after the batch header) compressed with
/// codec `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd) and hands each of its
/// `count` records' index and body (a prefix or whole, as `bodies` says)
/// to `each`, stopping at the first error `each` returns.
///
/// # Errors
/// [`BatchError::Corrupt`] if the payload does not inflate,
/// [`BatchError::Invalid`] if it does not hold exactly `count` records,
/// [`BatchError::TooLarge`] past a whole-body budget, or the error of `each`.
pub fn walk_records(
    codec: i16,
    payload: &[u8],
    count: i32,
    bodies: Bodies,
    mut each: impl FnMut(i32, &[u8]) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let corrupt = |e: io::Error| BatchError::Corrupt(format!("compressed records: {e}"));
    let mut stream = BufReader::new(decoder(codec, payload).map_err(corrupt)?);
    let mut prefix = [0u8; RECORD_PREFIX];
    let mut whole = Vec::new();
    let mut inflated: u64 = 0;
    for index in 0..count {
        let length = read_length(&mut stream, index)?;
        let mut body = (&mut stream).take(length);
        let read = match bodies {
            Bodies::Prefix => {
                let read = read_up_to(&mut body, &mut prefix).map_err(corrupt)?;
                each(index, &prefix[..read])?;
                read
            }
            Bodies::Whole { budget } => {
                inflated = inflated.saturating_add(length);
                if inflated > u64::try_from(budget).unwrap_or(u64::MAX) {
                    return Err(BatchError::TooLarge {
                        size: usize::try_from(inflated).unwrap_or(usize::MAX),
                        max: budget,
                    });
                }
                whole.clear();
                let read = body.read_to_end(&mut whole).map_err(corrupt)?;
                each(index, &whole)?;
                read
            }
        };
        let skipped = io::copy(&mut body, &mut io::sink()).map_err(corrupt)?;
        if u64::try_from(read)
            .unwrap_or(u64::MAX)
            .saturating_add(skipped)
            != length
        {
            return Err(BatchError::Invalid(format!(
                "record {index} runs past the batch"
            )));
        }
    }
    if !stream.fill_buf().map_err(corrupt)?.is_empty() {
        return Err(BatchError::Invalid(format!(
            "data follows the last of {count} records"
        )));
    }
    Ok(())
}

/// Compresses `raw` (record bytes back to back) with codec `codec` the way
/// Kafka's producers write it: gzip, snappy in xerial framing (32 KiB
/// blocks), an LZ4 frame (64 KiB independent blocks) or zstd.
///
/// # Errors
/// An unknown codec or a failing encoder.
pub fn compress(codec: i16, raw: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        1 => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(raw)?;
            encoder.finish()
        }
        2 => {
            let mut out = Vec::with_capacity(XERIAL_HEADER + raw.len() / 2);
            out.extend_from_slice(XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
            let mut encoder = snap::raw::Encoder::new();
            for chunk in raw.chunks(XERIAL_BLOCK) {
                let block = encoder.compress_vec(chunk).map_err(io::Error::other)?;
                let length = u32::try_from(block.len()).map_err(io::Error::other)?;
                out.extend_from_slice(&length.to_be_bytes());
                out.extend_from_slice(&block);
            }
            Ok(out)
        }
        3 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())?;
            encoder.write_all(raw)?;
            let (out, result) = encoder.finish();
            result.map(|()| out)
        }
        4 => zstd::stream::encode_all(raw, 3),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unknown compression codec {codec}"),
        )),
    }
}

fn decoder<'a>(codec: i16, payload: &'a [u8]) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match codec {
        1 => Box::new(flate2::read::MultiGzDecoder::new(payload)),
        2 => Box::new(SnappyReader::new(payload)),
        3 => Box::new(lz4::Decoder::new(payload)?),
        4 => Box::new(zstd::stream::read::Decoder::with_buffer(payload)?),
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unknown compression codec {codec}"),
            ))
        }
    })
}

/// Reads one record's length varint from the stream.
fn read_length(stream: &mut impl Read, index: i32) -> Result<u64, BatchError> {
    let bad = || BatchError::Invalid(format!("record {index} has a bad length"));
    let mut bytes = [0u8; 10];
    for at in 0..bytes.len() {
        stream
            .read_exact(&mut bytes[at..=at])
            .map_err(|_| BatchError::Invalid(format!("the batch ends before record {index}")))?;
        if bytes[at] & 0x80 == 0 {
            let (length, _) = read_varint(&bytes[..=at]).ok_or_else(bad)?;
            return u64::try_from(length).map_err(|_| bad());
        }
    }
    Err(bad())
}

/// Fills as much of `buf` as the stream holds; the bytes read.
fn read_up_to(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match stream.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The magic that opens Kafka's (xerial) snappy framing; a version and a
/// compatible version (i32 each) follow.
const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";
const XERIAL_HEADER: usize = 16;
/// The block size snappy-java's framed output stream uses.
const XERIAL_BLOCK: usize = 32 * 1024;

/// How much larger than its compressed form a snappy block may claim to
/// be: snappy's own limit is about 21x (a 3-byte copy of 64 bytes).
const SNAPPY_MAX_RATIO: usize = 32;

/// Kafka's snappy: xerial-framed blocks (a big-endian u32 length, then a
/// raw snappy block) after the header, or, without the header, one raw
/// block (as snappy-java's reader also accepts).
struct SnappyReader<'a> {
    rest: &'a [u8],
    framed: bool,
    block: Vec<u8>,
    at: usize,
    decoder: snap::raw::Decoder,
}

impl<'a> SnappyReader<'a> {
    fn new(payload: &'a [u8]) -> Self {
        let framed = payload.len() >= XERIAL_HEADER && payload.starts_with(XERIAL_MAGIC);
        Self {
            rest: if framed {
                &payload[XERIAL_HEADER..]
            } else {
                payload
            },
            framed,
            block: Vec::new(),
            at: 0,
            decoder: snap::raw::Decoder::new(),
        }
    }

    /// Inflates the next block; false at the end of the payload.
    fn next_block(&mut self) -> io::Result<bool> {
        let invalid = |why: String| io::Error::new(io::ErrorKind::InvalidData, why);
        if self.rest.is_empty() {
            return Ok(false);
        }
        let compressed = if self.framed {
            let (length, rest) = self
                .rest
                .split_first_chunk::<4>()
                .ok_or_else(|| invalid("truncated snappy block length".into()))?;
            let length =
                usize::try_from(u32::from_be_bytes(*length)).map_err(|e| invalid(e.to_string()))?;
            if length > rest.len() {
                return Err(invalid("truncated snappy block".into()));
            }
            let (block, rest) = rest.split_at(length);
            self.rest = rest;
            block
        } else {
            std::mem::take(&mut self.rest)
        };
        let inflated = snap::raw::decompress_len(compressed).map_err(io::Error::other)?;
        if inflated > compressed.len().saturating_mul(SNAPPY_MAX_RATIO) {
            return Err(invalid(format!(
                "a {} byte snappy block claims {inflated} bytes",
                compressed.len()
            )));
        }
        self.block = self
            .decoder
            .decompress_vec(compressed)
            .map_err(io::Error::other)?;
        self.at = 0;
        Ok(true)
    }
}

impl Read for SnappyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if !self.next_block()? {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.block.len() - self.at);
        buf[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
