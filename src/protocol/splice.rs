//! Responses whose record fields stay in the segment files: the encoder
//! writes everything else, and each records field becomes a [`FileRegion`]
//! the server sends with `sendfile`, so fetched batches are never copied
//! through user space.
//!
//! How: a handler puts a one-byte *marker* (see [`splice_marker`]) in each
//! records field and lists the regions in the same order. The crate's
//! encoder writes a bytes field as its length prefix then `put_slice` of
//! the bytes; [`SpliceBuf`] recognises a marker by its address, rewrites the
//! prefix for the region's real length and cuts the frame there.

use bytes::buf::UninitSlice;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;

use crate::log::FileRegion;

/// How many regions one response can splice; further records fields are
/// read into memory by the handler.
const MARKERS: usize = 4096;

/// The markers' storage: only its addresses matter, never its contents.
static MARKER_BYTES: [u8; MARKERS] = [0; MARKERS];

/// The records placeholder for the `index`-th region of a response, or
/// `None` when a response has more regions than markers.
pub fn splice_marker(index: usize) -> Option<Bytes> {
    MARKER_BYTES.get(index..=index).map(Bytes::from_static)
}

/// The region number of a marker slice.
fn marker_index(src: &[u8]) -> Option<usize> {
    let base = MARKER_BYTES.as_ptr() as usize;
    let at = (src.as_ptr() as usize).checked_sub(base)?;
    (src.len() == 1 && at < MARKERS).then_some(at)
}

/// One piece of an encoded response frame.
#[derive(Debug, Clone)]
pub enum Chunk {
    /// Encoded bytes.
    Bytes(Bytes),
    /// Record batches to copy from a segment file.
    File(FileRegion),
}

/// An encoded response frame (without its size prefix), in pieces.
#[derive(Debug, Clone, Default)]
pub struct ResponseFrame {
    /// The pieces, in order.
    pub chunks: Vec<Chunk>,
}

impl ResponseFrame {
    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.chunks
            .iter()
            .map(|c| match c {
                Chunk::Bytes(b) => b.len(),
                Chunk::File(r) => r.len,
            })
            .sum()
    }

    /// Whether the frame has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<Bytes> for ResponseFrame {
    fn from(bytes: Bytes) -> Self {
        Self {
            chunks: vec![Chunk::Bytes(bytes)],
        }
    }
}

/// The encoder's output buffer: a [`BytesMut`] that splits off a chunk at
/// every marker. Only the response messages go through it, and they never
/// use the gap API (`seek`/`range`), which here addresses the current
/// chunk only.
pub(super) struct SpliceBuf<'a> {
    current: BytesMut,
    chunks: Vec<Chunk>,
    regions: &'a [FileRegion],
    /// Whether bytes fields are compact (flexible versions): varint length + 1.
    compact: bool,
    /// A marker arrived without the length prefix expected before it.
    misplaced_marker: bool,
}

impl<'a> SpliceBuf<'a> {
    /// An empty buffer splicing `regions` (marker `i` stands for `regions[i]`).
    pub(super) fn new(regions: &'a [FileRegion], compact: bool) -> Self {
        Self {
            current: BytesMut::with_capacity(256),
            chunks: Vec::new(),
            regions,
            compact,
            misplaced_marker: false,
        }
    }

    /// The frame, or `None` if a marker was not where a records field's
    /// bytes go (a handler bug).
    pub(super) fn finish(mut self) -> Option<ResponseFrame> {
        if self.misplaced_marker {
            return None;
        }
        if !self.current.is_empty() || self.chunks.is_empty() {
            self.chunks.push(Chunk::Bytes(self.current.freeze()));
        }
        Some(ResponseFrame {
            chunks: self.chunks,
        })
    }

    fn splice(&mut self, region: &FileRegion) {
        // The encoder has just written the length prefix of a 1-byte value.
        let expected: &[u8] = if self.compact { &[2] } else { &[0, 0, 0, 1] };
        if !self.current.ends_with(expected) {
            self.misplaced_marker = true;
            return;
        }
        self.current.truncate(self.current.len() - expected.len());
        match (self.compact, u32::try_from(region.len)) {
            (true, Ok(len)) if len < u32::MAX => {
                crate::varint::put_unsigned(&mut self.current, u64::from(len + 1))
            }
            (false, Ok(len)) if i32::try_from(len).is_ok() => self.current.put_u32(len),
            _ => {
                self.misplaced_marker = true;
                return;
            }
        }
        let head = self.current.split().freeze();
        self.chunks.push(Chunk::Bytes(head));
        self.chunks.push(Chunk::File(region.clone()));
    }
}

// The crate's only unsafe code (the lint is `deny` elsewhere): the encoder
// needs a `BufMut`, an unsafe trait.
// SAFETY: every method delegates to the inner `BytesMut`, whose `BufMut`
// implementation upholds the trait's contract; `put_slice` only adds the
// marker check before delegating or splitting the buffer.
#[allow(unsafe_code)]
unsafe impl BufMut for SpliceBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.current.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller upholds `advance_mut`'s contract for the chunk
        // `chunk_mut` returned, which is the inner buffer's.
        unsafe { self.current.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.current.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        let Some(index) = marker_index(src) else {
            return self.current.put_slice(src);
        };
        match self.regions.get(index) {
            Some(region) => self.splice(region),
            None => self.misplaced_marker = true,
        }
    }
}

impl ByteBufMut for SpliceBuf<'_> {
    fn offset(&self) -> usize {
        self.current.offset()
    }

    fn seek(&mut self, offset: usize) {
        self.current.seek(offset);
    }

    fn range(&mut self, r: std::ops::Range<usize>) -> &mut [u8] {
        self.current.range(r)
    }
}
