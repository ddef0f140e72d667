//! Record batches (magic 2) as bytes: header fields read in place,
//! validation (magic, base offset, size, CRC-32C, record count, and the
//! record rules of Kafka's `LogValidator`: timestamp bounds, keys on
//! compacted topics, no control batches from clients), walking the records
//! of stored batches, and the few rewrites the broker makes (base offset,
//! leader epoch, max timestamp and LogAppendTime).
//!
//! Layout of the fixed 61-byte header (big-endian):
//! ```text
//!  0 baseOffset i64      12 partitionLeaderEpoch i32   21 attributes i16
//!  8 batchLength i32     16 magic i8                   23 lastOffsetDelta i32
//!                        17 crc u32 (CRC-32C of 21..)  27 baseTimestamp i64
//! 35 maxTimestamp i64    43 producerId i64             51 producerEpoch i16
//! 53 baseSequence i32    57 recordsCount i32           61 records...
//! ```

use std::fmt;

use super::compressed::{self, Bodies};
use crate::varint::{put_zigzag as write_varint, read_zigzag as read_varint};

/// Size of the batch header up to and including `recordsCount`.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batchLength` counts from (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const TRANSACTIONAL_BIT: i16 = 1 << 4;
const CONTROL_BIT: i16 = 1 << 5;
/// Attribute bit 6: the base timestamp is the batch's delete horizon
/// (KIP-534), after which the cleaner drops its tombstones.
const DELETE_HORIZON_BIT: i16 = 1 << 6;
/// A record timestamp meaning "none" (`RecordBatch.NO_TIMESTAMP`).
const NO_TIMESTAMP: i64 = -1;

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or than `batchLength` claims (a torn write).
    Truncated,
    /// The CRC or length field is wrong, or the records do not inflate
    /// (CORRUPT_MESSAGE).
    Corrupt(String),
    /// Larger than the topic's `max.message.bytes` (MESSAGE_TOO_LARGE).
    TooLarge {
        /// The batch's size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Well-formed but not acceptable (INVALID_RECORD).
    Invalid(String),
    /// Records that break the topic's [`RecordRules`], by index in the batch.
    Records(Vec<(i32, RecordProblem)>),
}

/// The per-record rules a topic imposes on produced batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRules {
    /// `message.timestamp.type=LogAppendTime`: the broker stamps the batch,
    /// so producer timestamps are not range-checked.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`: how far a CreateTime timestamp
    /// may lag the broker's clock.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`: how far it may lead it.
    pub timestamp_after_max_ms: i64,
    /// `cleanup.policy` includes `compact`: every record needs a key.
    pub keys_required: bool,
}

/// Why one record breaks the [`RecordRules`] (a Kafka `RecordError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordProblem {
    /// A CreateTime timestamp outside `[low, high]` (INVALID_TIMESTAMP).
    TimestampOutOfRange {
        /// The record's timestamp.
        timestamp: i64,
        /// The record's offset as the producer numbered it.
        offset: i64,
        /// `now - message.timestamp.before.max.ms`.
        low: i64,
        /// `now + message.timestamp.after.max.ms`.
        high: i64,
    },
    /// A producer marked the batch LogAppendTime on a LogAppendTime topic
    /// (INVALID_TIMESTAMP).
    LogAppendTimeFromProducer,
    /// A record without a key on a compacted topic (INVALID_RECORD).
    MissingKey,
}

impl RecordProblem {
    /// Whether Kafka answers INVALID_TIMESTAMP (else INVALID_RECORD).
    pub fn is_timestamp(&self) -> bool {
        !matches!(self, Self::MissingKey)
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "record batch is truncated"),
            Self::Corrupt(why) | Self::Invalid(why) => write!(f, "{why}"),
            Self::TooLarge { size, max } => write!(
                f,
                "the record batch is {size} bytes, more than the maximum of {max}"
            ),
            Self::Records(problems) => {
                write!(f, "{} records break the topic's rules", problems.len())
            }
        }
    }
}

impl std::error::Error for BatchError {}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(bytes)
}

/// The header of one batch, read from its first [`HEADER_SIZE`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset in the batch.
    pub base_offset: i64,
    /// Total size in bytes, header included.
    pub size: usize,
    /// Attribute bits (compression, timestamp type, transactional, control).
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch (the append time for LogAppendTime).
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `bytes` (which may stop right after
    /// the header) and checks the length field and magic. Checks neither
    /// the CRC nor that the whole batch is present.
    ///
    /// # Errors
    /// [`BatchError::Truncated`] if `bytes` is shorter than the header;
    /// [`BatchError::Corrupt`] for a bad length; [`BatchError::Invalid`]
    /// for a magic other than 2.
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BatchError::Truncated);
        }
        let batch_length = i32_at(bytes, 8);
        let size = usize::try_from(batch_length)
            .ok()
            .and_then(|l| l.checked_add(LOG_OVERHEAD))
            .filter(|s| *s >= HEADER_SIZE)
            .ok_or_else(|| BatchError::Corrupt(format!("invalid batch length {batch_length}")))?;
        let magic = bytes[MAGIC_OFFSET];
        if magic != 2 {
            return Err(BatchError::Invalid(format!(
                "record batch magic {magic}: only record batches with magic version 2 are allowed"
            )));
        }
        Ok(Self {
            base_offset: i64_at(bytes, 0),
            size,
            attributes: i16_at(bytes, ATTRIBUTES_OFFSET),
            last_offset_delta: i32_at(bytes, 23),
            base_timestamp: i64_at(bytes, 27),
            max_timestamp: i64_at(bytes, 35),
            producer_id: i64_at(bytes, 43),
            producer_epoch: i16_at(bytes, 51),
            base_sequence: i32_at(bytes, 53),
            records_count: i32_at(bytes, 57),
        })
    }

    /// Offset of the last record (saturating: a damaged header on disk
    /// must not overflow).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// Sequence number of the last record (wrapping as Kafka's does).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(-1)
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x7
    }

    /// Whether the batch holds a transaction marker.
    pub fn is_control(&self) -> bool {
        is_control(self.attributes)
    }

    /// Whether the batch belongs to a transaction (data or marker).
    pub fn is_transactional(&self) -> bool {
        is_transactional(self.attributes)
    }

    /// Whether the timestamps are the broker's append time (LogAppendTime).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// The delete horizon the cleaner set (KIP-534): after it the batch's
    /// tombstones go.
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & DELETE_HORIZON_BIT != 0).then_some(self.base_timestamp)
    }

    /// Whether the producer fields are set (an idempotent producer wrote it).
    pub fn has_producer(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Whether `bytes` start a batch whose records are compressed: checking
/// them means inflating, and a small batch may inflate to gigabytes.
pub fn is_compressed(bytes: &[u8]) -> bool {
    BatchHeader::parse(bytes).is_ok_and(|h| h.compression() != 0)
}

/// Whether batch `attributes` mark a transactional batch.
pub fn is_transactional(attributes: i16) -> bool {
    attributes & TRANSACTIONAL_BIT != 0
}

/// A transaction marker (Kafka's `EndTransactionMarker`): one control
/// record whose key is (version 0, type 0 abort / 1 commit) and whose value
/// is (version 0, coordinator epoch), in a transactional control batch of
/// `producer_id` and `epoch`, at offset 0 (the log assigns the real one).
pub fn control_batch(
    producer_id: i64,
    epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(4);
    key.extend_from_slice(&0i16.to_be_bytes());
    key.extend_from_slice(&i16::from(commit).to_be_bytes());
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0i16.to_be_bytes());
    value.extend_from_slice(&coordinator_epoch.to_be_bytes());
    let mut body = vec![0u8]; // record attributes
    write_varint(&mut body, 0); // timestamp delta
    write_varint(&mut body, 0); // offset delta
    write_varint(&mut body, 4);
    body.extend_from_slice(&key);
    write_varint(&mut body, 6);
    body.extend_from_slice(&value);
    write_varint(&mut body, 0); // headers
    let mut out = vec![0u8; HEADER_SIZE];
    out[MAGIC_OFFSET] = 2;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
        .copy_from_slice(&(TRANSACTIONAL_BIT | CONTROL_BIT).to_be_bytes());
    out[27..35].copy_from_slice(&timestamp.to_be_bytes());
    out[35..43].copy_from_slice(&timestamp.to_be_bytes());
    out[43..51].copy_from_slice(&producer_id.to_be_bytes());
    out[51..53].copy_from_slice(&epoch.to_be_bytes());
    out[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    out[57..61].copy_from_slice(&1i32.to_be_bytes());
    write_varint(&mut out, i64::try_from(body.len()).unwrap_or(0));
    out.extend_from_slice(&body);
    // A fixed, small batch: sealing cannot fail.
    let _ = seal(&mut out);
    out
}

/// What a transaction marker says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    /// Commit (or abort).
    pub commit: bool,
    /// The epoch of the coordinator that wrote it.
    pub coordinator_epoch: i32,
}

/// The marker in the control batch `bytes` (one whole batch); `None` if
/// it is not a readable marker.
pub fn read_marker(bytes: &[u8]) -> Option<Marker> {
    let header = BatchHeader::parse(bytes).ok()?;
    if !header.is_control() {
        return None;
    }
    let mut found = None;
    walk_whole_records(bytes, &header, 1 << 16, |record| {
        if found.is_none() {
            let kind = record
                .key
                .filter(|k| k.len() >= 4)
                .map(|k| i16::from_be_bytes([k[2], k[3]]));
            let epoch = record
                .value
                .filter(|v| v.len() >= 6)
                .map_or(-1, |v| i32::from_be_bytes([v[2], v[3], v[4], v[5]]));
            found = kind.map(|k| (k, epoch));
        }
    })
    .ok()?;
    let (kind, coordinator_epoch) = found?;
    let commit = match kind {
        0 => false,
        1 => true,
        _ => return None,
    };
    Some(Marker {
        commit,
        coordinator_epoch,
    })
}

/// Whether batch `attributes` mark a control batch (a transaction marker).
pub fn is_control(attributes: i16) -> bool {
    attributes & CONTROL_BIT != 0
}

/// Checks one whole batch as a producer sent it at `now_ms`, in Kafka's
/// order: header and magic, a base offset of 0, at most `max_bytes`
/// (`max.message.bytes`), CRC-32C, a record count matching
/// `lastOffsetDelta`, a sequence with a producer id, no control batch, and
/// the topic's `rules` for every record. Compressed records are inflated as
/// a stream, never whole; either way the records must fill the batch exactly.
/// The header returned carries the records' largest timestamp.
///
/// # Errors
/// [`BatchError`] describing the first problem found, or
/// [`BatchError::Records`] listing every record that breaks a rule.
pub fn validate(
    bytes: &[u8],
    max_bytes: usize,
    rules: &RecordRules,
    now_ms: i64,
) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
    if header.base_offset != 0 {
        return Err(BatchError::Invalid(format!(
            "The baseOffset of the record batch in the append should be 0, but it is {}",
            header.base_offset
        )));
    }
    if bytes.len() > max_bytes {
        return Err(BatchError::TooLarge {
            size: bytes.len(),
            max: max_bytes,
        });
    }
    if bytes.len() < header.size {
        return Err(BatchError::Truncated);
    }
    if header.size != bytes.len() {
        return Err(BatchError::Invalid(format!(
            "record batch is {} bytes but its length field says {}",
            bytes.len(),
            header.size
        )));
    }
    check_crc(bytes, &header)?;
    if header.records_count <= 0 || header.last_offset_delta != header.records_count - 1 {
        return Err(BatchError::Invalid(format!(
            "record count {} does not match last offset delta {}",
            header.records_count, header.last_offset_delta
        )));
    }
    if header.has_producer() && header.base_sequence < 0 {
        return Err(BatchError::Invalid(format!(
            "Invalid sequence number {} in record batch with producerId {}",
            header.base_sequence, header.producer_id
        )));
    }
    if header.is_control() {
        return Err(BatchError::Invalid(
            "Clients are not allowed to write control records".into(),
        ));
    }
    let checker = RecordChecker {
        header: &header,
        rules,
        now_ms,
    };
    let mut problems = Vec::new();
    let mut max_timestamp = NO_TIMESTAMP;
    walk_records(bytes, &header, |index, record| {
        max_timestamp =
            max_timestamp.max(header.base_timestamp.wrapping_add(record.timestamp_delta));
        if let Some(problem) = checker.check(record) {
            problems.push((index, problem));
        }
    })?;
    if problems.is_empty() {
        // The records' largest timestamp, whatever the header claims.
        Ok(BatchHeader {
            max_timestamp: if header.is_log_append_time() {
                header.max_timestamp
            } else {
                max_timestamp
            },
            ..header
        })
    } else {
        Err(BatchError::Records(problems))
    }
}

/// The first record of a stored batch (its whole bytes, header included)
/// whose `(offset, timestamp)` is `wanted`. LogAppendTime batches give
/// every record the batch's max timestamp. Records are read as
/// [`validate`] reads them; a damaged batch yields what precedes the damage.
pub fn find_record(bytes: &[u8], wanted: impl Fn(i64, i64) -> bool) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(bytes).ok()?;
    let bytes = bytes.get(..header.size)?;
    let mut found = None;
    let _ = walk_records(bytes, &header, |_, record| {
        let offset = header.base_offset.wrapping_add(record.offset_delta);
        let timestamp = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            header.base_timestamp.wrapping_add(record.timestamp_delta)
        };
        if found.is_none() && wanted(offset, timestamp) {
            found = Some((offset, timestamp));
        }
    });
    found
}

/// Hands each record's index and fields to `each`, inflating compressed
/// records as a stream. `bytes` is one whole batch.
fn walk_records(
    bytes: &[u8],
    header: &BatchHeader,
    mut each: impl FnMut(i32, RecordFields),
) -> Result<(), BatchError> {
    walk_bodies(bytes, header, Bodies::Prefix, |index, body| {
        each(index, record_fields(body).ok_or_else(|| malformed(index))?);
        Ok(())
    })
}

/// The one record walker: hands each record's index and body (the bytes
/// after its length varint; compressed records only their first
/// [`compressed::RECORD_PREFIX`] bytes unless `bodies` asks for whole
/// ones) to `each`. `bytes` is one whole batch.
fn walk_bodies(
    bytes: &[u8],
    header: &BatchHeader,
    bodies: Bodies,
    each: impl FnMut(i32, &[u8]) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    let payload = bytes.get(HEADER_SIZE..).unwrap_or_default();
    match header.compression() {
        0 => walk_uncompressed_records(payload, header.records_count, each),
        codec @ 1..=4 => {
            compressed::walk_records(codec, payload, header.records_count, bodies, each)
        }
        codec => Err(BatchError::Invalid(format!(
            "unknown compression codec {codec}"
        ))),
    }
}

/// One whole record of a stored batch, as the cleaner reads it.
#[derive(Debug, Clone, Copy)]
pub struct RecordView<'a> {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i64,
    /// Timestamp relative to the batch's base timestamp.
    pub timestamp_delta: i64,
    /// The key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Whether the value is non-null (a null value is a tombstone).
    pub has_value: bool,
    /// The value, `None` for a null value.
    pub value: Option<&'a [u8]>,
    /// The body as stored (everything after the length varint).
    body: &'a [u8],
    /// Where the timestamp delta ends in `body`.
    timestamp_end: usize,
}

/// Hands every record of a stored batch (`bytes`: one whole batch) to
/// `each`, whole. Compressed records are inflated one at a time, and at
/// most `budget` inflated bytes in all (then [`BatchError::TooLarge`]).
///
/// # Errors
/// A damaged batch, or one past the budget.
pub fn walk_whole_records(
    bytes: &[u8],
    header: &BatchHeader,
    budget: usize,
    mut each: impl FnMut(RecordView<'_>),
) -> Result<(), BatchError> {
    let bytes = bytes.get(..header.size).ok_or(BatchError::Truncated)?;
    walk_bodies(bytes, header, Bodies::Whole { budget }, |index, body| {
        each(record_view(body).ok_or_else(|| malformed(index))?);
        Ok(())
    })
}

/// Calls `each(offset, key, value)` for every record of the whole batch
/// `bytes` (compressed ones inflated a record at a time, at most
/// `MAX_INFLATED` bytes in all): how coordinators replay their records.
///
/// # Errors
/// A damaged batch, or one past the budget.
pub fn for_each_record(
    bytes: &[u8],
    mut each: impl FnMut(i64, Option<&[u8]>, Option<&[u8]>),
) -> Result<(), BatchError> {
    let header = BatchHeader::parse(bytes)?;
    walk_whole_records(bytes, &header, super::cleaner::MAX_INFLATED, |record| {
        let offset = header.base_offset.saturating_add(record.offset_delta);
        each(offset, record.key, record.value);
    })
}

/// Parses a whole record body (attributes i8, timestampDelta,
/// offsetDelta, keyLength, key, valueLength, ...).
fn record_view(body: &[u8]) -> Option<RecordView<'_>> {
    let mut at = 1; // attributes, unused since Kafka 0.11
    let mut next = || {
        let (value, used) = read_varint(body.get(at..)?)?;
        at += used;
        Some((value, at))
    };
    let (timestamp_delta, timestamp_end) = next()?;
    let (offset_delta, _) = next()?;
    let (key_length, key_start) = next()?;
    let (key, value_start) = match usize::try_from(key_length) {
        Ok(length) => {
            let end = key_start.checked_add(length)?;
            (Some(body.get(key_start..end)?), end)
        }
        Err(_) => (None, key_start),
    };
    let (value_length, used) = read_varint(body.get(value_start..)?)?;
    let value = match usize::try_from(value_length) {
        Ok(length) => {
            let start = value_start + used;
            Some(body.get(start..start.checked_add(length)?)?)
        }
        Err(_) => None,
    };
    Some(RecordView {
        offset_delta,
        timestamp_delta,
        key,
        has_value: value_length >= 0,
        value,
        body,
        timestamp_end,
    })
}

/// Rebuilds a stored batch with some of its records, as Kafka's
/// `MemoryRecords.filterTo` does: same base offset, last offset delta,
/// producer fields, leader epoch, max timestamp and codec; a new record
/// count, payload and CRC. With a new delete horizon, the base timestamp
/// becomes the horizon (attribute bit 6) and every record's timestamp
/// delta is rewritten against it, so record timestamps stay as they were.
#[derive(Debug)]
pub struct BatchBuilder {
    header: [u8; HEADER_SIZE],
    records: Vec<u8>,
    count: i32,
    /// (the original base timestamp, the horizon) when setting one.
    rebase: Option<(i64, i64)>,
}

impl BatchBuilder {
    /// A builder for a filtered copy of `original` (its first
    /// [`HEADER_SIZE`] bytes are read), setting `delete_horizon` unless the
    /// batch already carries one.
    ///
    /// # Errors
    /// `original` is shorter than a header.
    pub fn new(original: &[u8], delete_horizon: Option<i64>) -> Result<Self, BatchError> {
        let header = BatchHeader::parse(original)?;
        let mut bytes = [0u8; HEADER_SIZE];
        bytes.copy_from_slice(&original[..HEADER_SIZE]);
        let rebase = delete_horizon
            .filter(|_| header.delete_horizon().is_none())
            .map(|horizon| (header.base_timestamp, horizon));
        if let Some((_, horizon)) = rebase {
            let attributes = header.attributes | DELETE_HORIZON_BIT;
            bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2]
                .copy_from_slice(&attributes.to_be_bytes());
            bytes[27..35].copy_from_slice(&horizon.to_be_bytes());
        }
        Ok(Self {
            header: bytes,
            records: Vec::new(),
            count: 0,
            rebase,
        })
    }

    /// Adds one record (in offset order).
    pub fn push(&mut self, record: &RecordView<'_>) {
        let mut body;
        let bytes = match self.rebase {
            None => record.body,
            Some((old_base, horizon)) => {
                body = Vec::with_capacity(record.body.len() + 10);
                body.push(record.body[0]);
                let timestamp = old_base.wrapping_add(record.timestamp_delta);
                write_varint(&mut body, timestamp.wrapping_sub(horizon));
                body.extend_from_slice(&record.body[record.timestamp_end..]);
                &body[..]
            }
        };
        write_varint(
            &mut self.records,
            i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        );
        self.records.extend_from_slice(bytes);
        self.count += 1;
    }

    /// The batch: the records compressed with the original codec.
    ///
    /// # Errors
    /// The encoder fails.
    pub fn finish(mut self) -> std::io::Result<Vec<u8>> {
        let codec = i16_at(&self.header, ATTRIBUTES_OFFSET) & 0x7;
        let payload = if codec == 0 {
            std::mem::take(&mut self.records)
        } else {
            compressed::compress(codec, &self.records)?
        };
        let mut out = Vec::with_capacity(HEADER_SIZE + payload.len());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&payload);
        out[57..61].copy_from_slice(&self.count.to_be_bytes());
        seal(&mut out).map_err(std::io::Error::other)?;
        Ok(out)
    }
}

/// The header of `original` alone, with no records and no codec: what
/// the cleaner keeps of an idempotent producer's last batch when none of
/// its records survive (Kafka's `DefaultRecordBatch.writeEmptyHeader`),
/// so the producer's sequence survives cleaning and restarts.
///
/// # Errors
/// `original` is shorter than a header.
pub fn empty_batch(original: &[u8]) -> Result<Vec<u8>, BatchError> {
    let header = BatchHeader::parse(original)?;
    let mut out = original[..HEADER_SIZE].to_vec();
    let attributes = header.attributes & !0x7;
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    out[57..61].copy_from_slice(&0i32.to_be_bytes());
    seal(&mut out)?;
    Ok(out)
}

/// Writes the length field and the CRC of a whole batch.
fn seal(bytes: &mut [u8]) -> Result<(), BatchError> {
    let length = bytes
        .len()
        .checked_sub(LOG_OVERHEAD)
        .and_then(|l| i32::try_from(l).ok())
        .ok_or_else(|| BatchError::Invalid("batch too large".into()))?;
    bytes[8..12].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The fields of one record that the [`RecordRules`] look at.
#[derive(Debug, Clone, Copy)]
struct RecordFields {
    timestamp_delta: i64,
    offset_delta: i64,
    has_key: bool,
}

/// Applies [`RecordRules`] to the records of one batch, as Kafka's
/// `LogValidator.validateRecord` does.
struct RecordChecker<'a> {
    header: &'a BatchHeader,
    rules: &'a RecordRules,
    now_ms: i64,
}

impl RecordChecker<'_> {
    fn check(&self, record: RecordFields) -> Option<RecordProblem> {
        if self.rules.keys_required && !record.has_key {
            return Some(RecordProblem::MissingKey);
        }
        let timestamp = if self.header.is_log_append_time() {
            self.header.max_timestamp
        } else {
            self.header
                .base_timestamp
                .wrapping_add(record.timestamp_delta)
        };
        if !self.rules.log_append_time && timestamp != NO_TIMESTAMP {
            // Kafka's arithmetic, overflow included.
            let lag = self.now_ms.wrapping_sub(timestamp);
            let out_of_range = lag > self.rules.timestamp_before_max_ms
                || lag.wrapping_neg() > self.rules.timestamp_after_max_ms;
            return out_of_range.then(|| RecordProblem::TimestampOutOfRange {
                timestamp,
                offset: self.header.base_offset.wrapping_add(record.offset_delta),
                low: self.now_ms.wrapping_sub(self.rules.timestamp_before_max_ms),
                high: self.now_ms.wrapping_add(self.rules.timestamp_after_max_ms),
            });
        }
        (self.header.is_log_append_time()).then_some(RecordProblem::LogAppendTimeFromProducer)
    }
}

/// Verifies the stored CRC-32C over everything from `attributes` on.
///
/// # Errors
/// [`BatchError::Corrupt`] on a mismatch.
pub fn check_crc(bytes: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    let stored = u32::from_be_bytes([
        bytes[CRC_OFFSET],
        bytes[CRC_OFFSET + 1],
        bytes[CRC_OFFSET + 2],
        bytes[CRC_OFFSET + 3],
    ]);
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..header.size]);
    if stored != computed {
        return Err(BatchError::Corrupt(format!(
            "record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}"
        )));
    }
    Ok(())
}

/// Walks the length-prefixed records of an uncompressed batch, handing
/// each one's index and body to `each`.
fn walk_uncompressed_records(
    mut records: &[u8],
    count: i32,
    mut each: impl FnMut(i32, &[u8]) -> Result<(), BatchError>,
) -> Result<(), BatchError> {
    for index in 0..count {
        let (length, used) = read_varint(records)
            .ok_or_else(|| BatchError::Invalid(format!("record {index} has a bad length")))?;
        let length = usize::try_from(length)
            .map_err(|_| BatchError::Invalid(format!("record {index} has a negative length")))?;
        let end = used
            .checked_add(length)
            .filter(|e| *e <= records.len())
            .ok_or_else(|| BatchError::Invalid(format!("record {index} runs past the batch")))?;
        each(index, &records[used..end])?;
        records = &records[end..];
    }
    if !records.is_empty() {
        return Err(BatchError::Invalid(format!(
            "{} bytes follow the last of {count} records",
            records.len()
        )));
    }
    Ok(())
}

fn malformed(index: i32) -> BatchError {
    BatchError::Invalid(format!("record {index} is malformed"))
}

/// Reads the fields up to the key length of one record's body
/// (attributes i8, timestampDelta, offsetDelta, keyLength: varints).
fn record_fields(body: &[u8]) -> Option<RecordFields> {
    let mut at = 1; // attributes, unused since Kafka 0.11
    let mut next = || {
        let (value, used) = read_varint(body.get(at..)?)?;
        at += used;
        Some(value)
    };
    Some(RecordFields {
        timestamp_delta: next()?,
        offset_delta: next()?,
        has_key: next()? >= 0,
    })
}

/// The timestamps the broker stamps on a batch it stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// CreateTime: the max timestamp is the largest of the records'.
    CreateTime(i64),
    /// LogAppendTime: the broker's clock at append.
    LogAppendTime(i64),
}

/// Rewrites the fields the broker owns: the base offset and the partition
/// leader epoch (both outside the CRC), and, as Kafka's `LogValidator`
/// does, the max timestamp (the records' largest, or the append time with
/// the LogAppendTime attribute), recomputing the CRC when they change.
pub fn assign(bytes: &mut [u8], base_offset: i64, leader_epoch: i32, stamp: Stamp) {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    let old_attributes = i16_at(bytes, ATTRIBUTES_OFFSET);
    let (attributes, max_timestamp) = match stamp {
        Stamp::CreateTime(max) => (old_attributes, max),
        Stamp::LogAppendTime(now) => (old_attributes | TIMESTAMP_TYPE_BIT, now),
    };
    if attributes == old_attributes && i64_at(bytes, 35) == max_timestamp {
        return;
    }
    bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    bytes[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
    bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Kafka's default `max.message.bytes`.
    const MAX: usize = 1_048_588;

    /// Kafka's default topic rules (CreateTime, at most 1 hour ahead, not compacted).
    const KAFKA_DEFAULTS: RecordRules = RecordRules {
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: 3_600_000,
        keys_required: false,
    };

    /// Encodes `count` records as one batch with the kafka-protocol encoder.
    pub(crate) fn batch(count: i32, timestamp: i64, compression: Compression) -> Vec<u8> {
        batch_with_producer(count, timestamp, compression, -1, -1, -1)
    }

    /// As [`batch`], with idempotent producer fields.
    /// `batch` marked transactional (CRC resealed).
    pub(crate) fn transactional(mut batch: Vec<u8>) -> Vec<u8> {
        let attributes = i16_at(&batch, ATTRIBUTES_OFFSET) | TRANSACTIONAL_BIT;
        batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        seal(&mut batch).unwrap();
        batch
    }

    pub(crate) fn batch_with_producer(
        count: i32,
        timestamp: i64,
        compression: Compression,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        let records: Vec<(i64, Option<String>)> = (0..count)
            .map(|i| (timestamp + i64::from(i), Some(format!("key-{i}"))))
            .collect();
        encode(
            &records,
            compression,
            (producer_id, producer_epoch, base_sequence),
        )
    }

    /// Encodes records with the given timestamps and keys (`None`: no key).
    fn batch_of(records: &[(i64, Option<&str>)], compression: Compression) -> Vec<u8> {
        let records: Vec<(i64, Option<String>)> = records
            .iter()
            .map(|(timestamp, key)| (*timestamp, key.map(str::to_owned)))
            .collect();
        encode(&records, compression, (-1, -1, -1))
    }

    /// One batch of `(timestamp, key)` records, values `value-<i>`, written
    /// by `(producer id, epoch, base sequence)`.
    fn encode(
        records: &[(i64, Option<String>)],
        compression: Compression,
        (producer_id, producer_epoch, base_sequence): (i64, i16, i32),
    ) -> Vec<u8> {
        let records: Vec<Record> = records
            .iter()
            .zip(0..)
            .map(|((timestamp, key), i)| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id,
                producer_epoch,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                // The encoder starts a new batch when offset - sequence changes;
                // i - 1 keeps it constant and makes the base sequence -1.
                sequence: if base_sequence < 0 {
                    i - 1
                } else {
                    base_sequence + i
                },
                timestamp: *timestamp,
                key: key.clone().map(bytes::Bytes::from),
                value: Some(bytes::Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
        buf.to_vec()
    }

    #[test]
    fn validates_encoder_output() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let bytes = batch(3, 1000, compression);
            let header = validate(&bytes, MAX, &KAFKA_DEFAULTS, 0).expect("valid");
            assert_eq!(header.records_count, 3);
            assert_eq!(header.last_offset_delta, 2);
            assert_eq!(header.max_timestamp, 1002);
        }
    }

    #[test]
    fn rejects_damage() {
        let validate = |bytes: &[u8]| validate(bytes, MAX, &KAFKA_DEFAULTS, 0);
        let good = batch(2, 0, Compression::None);
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert!(matches!(validate(&flipped), Err(BatchError::Corrupt(_))));
        assert_eq!(
            validate(&good[..good.len() - 1]),
            Err(BatchError::Truncated)
        );
        let mut magic = good.clone();
        magic[MAGIC_OFFSET] = 1;
        assert!(matches!(validate(&magic), Err(BatchError::Invalid(_))));
        let mut long = good.clone();
        long.extend_from_slice(&[0; 4]);
        assert!(matches!(validate(&long), Err(BatchError::Invalid(_))));
        // Kafka's order: base offset, then size, then CRC.
        let mut offset = flipped.clone();
        offset[0..8].copy_from_slice(&7i64.to_be_bytes());
        assert!(matches!(
            validate(&offset),
            Err(BatchError::Invalid(m)) if m.contains("should be 0, but it is 7")
        ));
        assert_eq!(
            super::validate(&flipped, good.len() - 1, &KAFKA_DEFAULTS, 0),
            Err(BatchError::TooLarge {
                size: good.len(),
                max: good.len() - 1
            })
        );
        // A producer id needs a sequence.
        let mut unsequenced = batch_with_producer(1, 0, Compression::None, 5, 0, 0);
        unsequenced[53..57].copy_from_slice(&(-1i32).to_be_bytes());
        reseal(&mut unsequenced);
        assert!(matches!(
            validate(&unsequenced),
            Err(BatchError::Invalid(m)) if m.contains("Invalid sequence number -1")
        ));
    }

    #[test]
    fn assign_keeps_crc_valid() {
        let mut bytes = batch(2, 5, Compression::None);
        assign(&mut bytes, 42, 0, Stamp::LogAppendTime(777));
        let header = BatchHeader::parse(&bytes).expect("header");
        check_crc(&bytes, &header).expect("still valid");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.max_timestamp, 777);
        assert_ne!(header.attributes & TIMESTAMP_TYPE_BIT, 0);
    }

    #[test]
    fn the_stored_max_timestamp_is_the_records_largest() {
        // A header claiming a max timestamp below a record's.
        let mut bytes = batch(3, 1000, Compression::Lz4);
        bytes[35..43].copy_from_slice(&1000i64.to_be_bytes());
        reseal(&mut bytes);
        let header = validate(&bytes, MAX, &KAFKA_DEFAULTS, 0).expect("valid");
        assert_eq!(header.max_timestamp, 1002);
        assign(&mut bytes, 0, 0, Stamp::CreateTime(header.max_timestamp));
        let stored = BatchHeader::parse(&bytes).expect("header");
        check_crc(&bytes, &stored).expect("CRC recomputed");
        assert_eq!(stored.max_timestamp, 1002);
    }

    const NOW: i64 = 1_800_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn problems(result: Result<BatchHeader, BatchError>) -> Vec<(i32, RecordProblem)> {
        match result {
            Err(BatchError::Records(problems)) => problems,
            other => panic!("expected record problems, got {other:?}"),
        }
    }

    #[test]
    fn timestamps_more_than_an_hour_ahead_are_refused_per_record() {
        let bytes = batch_of(
            &[
                (NOW, Some("a")),
                (NOW + HOUR + 1, Some("b")),
                (NOW + HOUR, Some("c")),
            ],
            Compression::None,
        );
        let found = problems(validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW));
        assert_eq!(
            found,
            vec![(
                1,
                RecordProblem::TimestampOutOfRange {
                    timestamp: NOW + HOUR + 1,
                    offset: 1,
                    low: NOW.wrapping_sub(i64::MAX),
                    high: NOW + HOUR,
                }
            )]
        );
        assert!(found[0].1.is_timestamp());
        // Old timestamps pass by default, fail under a before limit; -1 means none.
        let old = batch_of(&[(0, Some("a")), (-1, Some("b"))], Compression::None);
        assert!(validate(&old, MAX, &KAFKA_DEFAULTS, NOW).is_ok());
        let strict = RecordRules {
            timestamp_before_max_ms: HOUR,
            ..KAFKA_DEFAULTS
        };
        assert_eq!(problems(validate(&old, MAX, &strict, NOW)).len(), 1);
        // LogAppendTime topics ignore the producer's clock.
        let append_time = RecordRules {
            log_append_time: true,
            ..KAFKA_DEFAULTS
        };
        assert!(validate(&bytes, MAX, &append_time, NOW).is_ok());
    }

    const COMPACTED: RecordRules = RecordRules {
        keys_required: true,
        ..KAFKA_DEFAULTS
    };

    /// Rewrites the CRC after a test edits a batch.
    fn reseal(bytes: &mut [u8]) {
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }

    #[test]
    fn compressed_batches_are_checked_record_by_record() {
        let codecs = [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for compression in codecs {
            // Keys on compacted topics: every codec streams record by record.
            let records = [
                (NOW, Some("a")),
                (NOW, Some("b")),
                (NOW, None),
                (NOW, Some("d")),
            ];
            let bytes = batch_of(&records, compression);
            assert!(
                validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW).is_ok(),
                "{compression:?}"
            );
            assert_eq!(
                problems(validate(&bytes, MAX, &COMPACTED, NOW)),
                vec![(2, RecordProblem::MissingKey)],
                "{compression:?}"
            );
            // Every refused timestamp is named, also one the header hides
            // (its max timestamp claims less than a record holds).
            let ahead = [
                (NOW + 2 * HOUR, Some("a")),
                (NOW, Some("b")),
                (NOW + 3 * HOUR, Some("c")),
            ];
            let mut bytes = batch_of(&ahead, compression);
            bytes[35..43].copy_from_slice(&NOW.to_be_bytes()); // maxTimestamp
            reseal(&mut bytes);
            let found = problems(validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW));
            let refused: Vec<(i32, i64)> = found
                .iter()
                .map(|(index, problem)| match problem {
                    RecordProblem::TimestampOutOfRange { offset, .. } => (*index, *offset),
                    other => panic!("{other:?}"),
                })
                .collect();
            assert_eq!(refused, vec![(0, 0), (2, 2)], "{compression:?}");
        }
    }

    #[test]
    fn compressed_payloads_that_do_not_inflate_are_corrupt() {
        let mut bytes = batch_of(&[(NOW, Some("a")), (NOW, Some("b"))], Compression::Gzip);
        let end = bytes.len();
        bytes[HEADER_SIZE + 10..end].fill(0xaa);
        reseal(&mut bytes);
        assert!(matches!(
            validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW),
            Err(BatchError::Corrupt(_))
        ));
        // A batch declaring more records than it holds.
        let mut short = batch_of(&[(NOW, Some("a"))], Compression::Lz4);
        short[23..27].copy_from_slice(&1i32.to_be_bytes()); // lastOffsetDelta
        short[57..61].copy_from_slice(&2i32.to_be_bytes()); // recordsCount
        reseal(&mut short);
        assert!(matches!(
            validate(&short, MAX, &KAFKA_DEFAULTS, NOW),
            Err(BatchError::Invalid(m)) if m.contains("ends before record 1")
        ));
        // Claiming 2^31 - 1 records costs a walk to the end of the data.
        let mut huge = batch_of(&[(NOW, Some("a"))], Compression::Zstd);
        huge[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
        huge[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        reseal(&mut huge);
        assert!(matches!(
            validate(&huge, MAX, &KAFKA_DEFAULTS, NOW),
            Err(BatchError::Invalid(m)) if m.contains("ends before record 1")
        ));
        assert_eq!(find_record(&huge, |_, _| true), Some((0, NOW)));
    }

    #[test]
    fn find_record_reads_stored_batches() {
        for compression in [Compression::None, Compression::Snappy] {
            let records = [(NOW, Some("a")), (NOW + 5, Some("b")), (NOW + 2, Some("c"))];
            let mut bytes = batch_of(&records, compression);
            assign(&mut bytes, 100, 0, Stamp::CreateTime(NOW + 5));
            assert_eq!(find_record(&bytes, |_, ts| ts > NOW), Some((101, NOW + 5)));
            assert_eq!(find_record(&bytes, |o, _| o >= 102), Some((102, NOW + 2)));
            assert_eq!(find_record(&bytes, |_, ts| ts > NOW + 5), None);
            assign(&mut bytes, 100, 0, Stamp::LogAppendTime(NOW + 9));
            assert_eq!(find_record(&bytes, |o, _| o >= 101), Some((101, NOW + 9)));
            // A damaged length field is no panic.
            bytes[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
            assert_eq!(find_record(&bytes, |_, _| true), None);
        }
    }

    #[test]
    fn compacted_topics_need_keys() {
        let compacted = COMPACTED;
        let bytes = batch_of(
            &[(NOW, None), (NOW, Some("k")), (NOW, None)],
            Compression::None,
        );
        assert_eq!(
            problems(validate(&bytes, MAX, &compacted, NOW)),
            vec![
                (0, RecordProblem::MissingKey),
                (2, RecordProblem::MissingKey)
            ]
        );
        assert!(validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW).is_ok());
    }

    #[test]
    fn control_batches_from_clients_are_refused() {
        let mut bytes = batch(1, NOW, Compression::None);
        let attributes = i16_at(&bytes, ATTRIBUTES_OFFSET) | CONTROL_BIT;
        bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        reseal(&mut bytes);
        assert!(matches!(
            validate(&bytes, MAX, &KAFKA_DEFAULTS, NOW),
            Err(BatchError::Invalid(m)) if m.contains("control records")
        ));
    }
}
