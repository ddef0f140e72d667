//! The records the transaction coordinator keeps in `__transaction_state`,
//! in Kafka's schemas (`TransactionLogKey` v0, `TransactionLogValue` v0), so
//! Kafka's `TransactionLogMessageFormatter` decodes them.
//!
//! Key: int16 version 0, string transactional id. Value: int16 version 0,
//! producer id i64, producer epoch i16, timeout i32, status i8, partitions
//! (nullable array of topic string + int32 array), last update i64, start
//! i64; null for a tombstone (an expired transactional id).

use bytes::{BufMut, Bytes, BytesMut};

use super::TxnState;
use crate::coordinator::codec::{put_string, Reader};

/// One transactional id's stored state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnRecord {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms` the producer asked for.
    pub timeout_ms: i32,
    /// The state.
    pub state: TxnState,
    /// Partitions in the transaction, by topic (null for Empty).
    pub partitions: Vec<(String, Vec<i32>)>,
    /// When the state last changed.
    pub last_update_ms: i64,
    /// When the transaction started (-1 if none).
    pub start_ms: i64,
}

/// The key of `transactional_id`'s record.
pub fn key(transactional_id: &str) -> Bytes {
    let mut key = BytesMut::with_capacity(4 + transactional_id.len());
    key.put_i16(0);
    put_string(&mut key, transactional_id);
    key.freeze()
}

/// The value of a record.
pub fn value(record: &TxnRecord) -> Bytes {
    let mut v = BytesMut::with_capacity(64);
    v.put_i16(0);
    v.put_i64(record.producer_id);
    v.put_i16(record.producer_epoch);
    v.put_i32(record.timeout_ms);
    v.put_i8(record.state.id());
    if record.state == TxnState::Empty {
        v.put_i32(-1);
    } else {
        v.put_i32(i32::try_from(record.partitions.len()).unwrap_or(i32::MAX));
        for (topic, partitions) in &record.partitions {
            put_string(&mut v, topic);
            v.put_i32(i32::try_from(partitions.len()).unwrap_or(i32::MAX));
            for p in partitions {
                v.put_i32(*p);
            }
        }
    }
    v.put_i64(record.last_update_ms);
    v.put_i64(record.start_ms);
    v.freeze()
}

/// Decodes a record: the transactional id and its state (`None` for a
/// tombstone); `Ok(None)` for a key of a version strom does not write.
///
/// # Errors
/// The bytes are malformed.
pub fn decode(
    key: &[u8],
    value: Option<&[u8]>,
) -> Result<Option<(String, Option<TxnRecord>)>, String> {
    let mut k = Reader(key);
    if k.i16()? != 0 {
        return Ok(None);
    }
    let id = k.string()?;
    let Some(value) = value else {
        return Ok(Some((id, None)));
    };
    let mut r = Reader(value);
    let version = r.i16()?;
    if version != 0 {
        return Err(format!(
            "TransactionLogValue version {version} is not supported"
        ));
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_id(r.i8()?).ok_or("unknown transaction state")?;
    let count = r.i32()?;
    let mut partitions = Vec::new();
    for _ in 0..count.max(0) {
        let topic = r.string()?;
        let n = r.i32()?;
        let mut ids = Vec::new();
        for _ in 0..n.max(0) {
            ids.push(r.i32()?);
        }
        partitions.push((topic, ids));
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Ok(Some((
        id,
        Some(TxnRecord {
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
        }),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let record = TxnRecord {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::PrepareCommit,
            partitions: vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])],
            last_update_ms: 5,
            start_ms: 4,
        };
        let decoded = decode(&key("tx"), Some(&value(&record))).unwrap();
        assert_eq!(decoded, Some(("tx".into(), Some(record))));
        let empty = TxnRecord {
            state: TxnState::Empty,
            partitions: Vec::new(),
            start_ms: -1,
            ..TxnRecord {
                producer_id: 1,
                producer_epoch: 0,
                timeout_ms: 1,
                state: TxnState::Empty,
                partitions: Vec::new(),
                last_update_ms: 0,
                start_ms: -1,
            }
        };
        let bytes = value(&empty);
        // A null partition array, as Kafka writes for Empty.
        assert_eq!(&bytes[17..21], &(-1i32).to_be_bytes());
        assert_eq!(
            decode(&key("e"), Some(&bytes)).unwrap().unwrap().1,
            Some(empty)
        );
        assert_eq!(decode(&key("x"), None).unwrap(), Some(("x".into(), None)));
    }
}
