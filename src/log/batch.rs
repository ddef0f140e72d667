//! Record batches (magic 2) as bytes: header fields read in place,
//! validation (magic, lengths, CRC-32C, record count), and the few
//! rewrites the broker makes (base offset, leader epoch, log append time).
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

/// Size of the batch header up to and including `recordsCount`.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batchLength` counts from (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
const TIMESTAMP_TYPE_BIT: i16 = 1 << 3;
const CONTROL_BIT: i16 = 1 << 5;

/// Why bytes are not a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or than `batchLength` claims (a torn write).
    Truncated,
    /// The CRC, magic or lengths are wrong (CORRUPT_MESSAGE).
    Corrupt(String),
    /// Well-formed but not acceptable (INVALID_RECORD).
    Invalid(String),
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated => write!(f, "record batch is truncated"),
            Self::Corrupt(why) | Self::Invalid(why) => write!(f, "{why}"),
        }
    }
}

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
    /// [`BatchError::Corrupt`] for a bad length or magic.
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
            return Err(BatchError::Corrupt(format!(
                "unsupported record batch magic {magic}; only magic 2 is accepted"
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

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
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

    /// Whether the timestamps are the broker's append time (LogAppendTime).
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }

    /// Whether the producer fields are set (an idempotent producer wrote it).
    pub fn has_producer(&self) -> bool {
        self.producer_id >= 0
    }
}

/// Whether batch `attributes` mark a control batch (a transaction marker).
pub fn is_control(attributes: i16) -> bool {
    attributes & CONTROL_BIT != 0
}

/// Checks one whole batch as a producer sent it: header, CRC-32C, a record
/// count matching `lastOffsetDelta`, and, for uncompressed batches, that the
/// records fill the batch exactly.
///
/// # Errors
/// [`BatchError`] describing the first problem found.
pub fn validate(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(bytes)?;
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
    if header.compression() == 0 {
        check_uncompressed_records(&bytes[HEADER_SIZE..], header.records_count)?;
    } else if header.compression() > 4 {
        return Err(BatchError::Invalid(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    Ok(header)
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

/// Walks the length-prefixed records of an uncompressed batch.
fn check_uncompressed_records(mut records: &[u8], count: i32) -> Result<(), BatchError> {
    for index in 0..count {
        let (length, used) = read_varint(records)
            .ok_or_else(|| BatchError::Invalid(format!("record {index} has a bad length")))?;
        let length = usize::try_from(length)
            .map_err(|_| BatchError::Invalid(format!("record {index} has a negative length")))?;
        let end = used
            .checked_add(length)
            .filter(|e| *e <= records.len())
            .ok_or_else(|| BatchError::Invalid(format!("record {index} runs past the batch")))?;
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

/// A zig-zag varint (Kafka's record field encoding): value and bytes used.
fn read_varint(bytes: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, byte) in bytes.iter().enumerate().take(10) {
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let value = i64::try_from(raw >> 1).ok()? ^ -i64::try_from(raw & 1).ok()?;
            return Some((value, i + 1));
        }
    }
    None
}

/// Rewrites the fields the broker owns: the base offset and the partition
/// leader epoch (both outside the CRC), and, for LogAppendTime topics, the
/// timestamp type and max timestamp (then the CRC).
pub fn assign(bytes: &mut [u8], base_offset: i64, leader_epoch: i32, log_append_time: Option<i64>) {
    bytes[0..8].copy_from_slice(&base_offset.to_be_bytes());
    bytes[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(now) = log_append_time {
        let attributes = i16_at(bytes, ATTRIBUTES_OFFSET) | TIMESTAMP_TYPE_BIT;
        bytes[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
        bytes[35..43].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..]);
        bytes[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Encodes `count` records as one batch with the kafka-protocol encoder.
    pub(crate) fn batch(count: i32, timestamp: i64, compression: Compression) -> Vec<u8> {
        batch_with_producer(count, timestamp, compression, -1, -1, -1)
    }

    /// As [`batch`], with idempotent producer fields.
    pub(crate) fn batch_with_producer(
        count: i32,
        timestamp: i64,
        compression: Compression,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        let records: Vec<Record> = (0..count)
            .map(|i| Record {
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
                timestamp: timestamp + i64::from(i),
                key: Some(bytes::Bytes::from(format!("key-{i}"))),
                value: Some(bytes::Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode batch");
        buf.to_vec()
    }

    #[test]
    fn validates_encoder_output() {
        for compression in [Compression::None, Compression::Gzip, Compression::Lz4] {
            let bytes = batch(3, 1000, compression);
            let header = validate(&bytes).expect("valid");
            assert_eq!(header.records_count, 3);
            assert_eq!(header.last_offset_delta, 2);
            assert_eq!(header.max_timestamp, 1002);
        }
    }

    #[test]
    fn rejects_damage() {
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
        assert!(matches!(validate(&magic), Err(BatchError::Corrupt(_))));
        let mut long = good.clone();
        long.extend_from_slice(&[0; 4]);
        assert!(matches!(validate(&long), Err(BatchError::Invalid(_))));
    }

    #[test]
    fn assign_keeps_crc_valid() {
        let mut bytes = batch(2, 5, Compression::None);
        assign(&mut bytes, 42, 0, Some(777));
        let header = validate(&bytes).expect("still valid");
        assert_eq!(header.base_offset, 42);
        assert_eq!(header.max_timestamp, 777);
        assert_ne!(header.attributes & TIMESTAMP_TYPE_BIT, 0);
    }
}
