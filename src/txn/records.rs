//! The records the transaction coordinator keeps in `__transaction_state`,
//! in Kafka's schemas (`TransactionLogKey` v0, `TransactionLogValue` v1 as
//! Kafka writes it with `transaction.version` 2; v0 is read too), so Kafka's
//! `TransactionLogMessageFormatter` decodes them.
//!
//! Key: int16 version 0, string transactional id. Value: int16 version,
//! producer id i64, producer epoch i16, timeout i32, status i8, partitions
//! (nullable array of topic string + int32 array), last update i64, start
//! i64; v1 is flexible (compact strings and arrays, tagged fields) and
//! carries PreviousProducerId (tag 0), NextProducerId (tag 1) and
//! ClientTransactionVersion (tag 2) as tagged fields. Null for a
//! tombstone (an expired transactional id).

use bytes::{BufMut, Bytes, BytesMut};

use super::TxnState;
use crate::coordinator::codec::{
    put_compact_len, put_compact_string, put_string, put_tagged, put_uvarint, Reader,
};

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
    /// The producer id before the last rotation, or -1.
    pub previous_producer_id: i64,
    /// The producer id the next completion moves to, or -1.
    pub next_producer_id: i64,
    /// The transaction protocol version the client speaks (0 or 2).
    pub client_version: i16,
}

/// The key of `transactional_id`'s record.
pub fn key(transactional_id: &str) -> Bytes {
    let mut key = BytesMut::with_capacity(4 + transactional_id.len());
    key.put_i16(0);
    put_string(&mut key, transactional_id);
    key.freeze()
}

/// The value of a record (version 1).
pub fn value(record: &TxnRecord) -> Bytes {
    let mut v = BytesMut::with_capacity(64);
    v.put_i16(1);
    v.put_i64(record.producer_id);
    v.put_i16(record.producer_epoch);
    v.put_i32(record.timeout_ms);
    v.put_i8(record.state.id());
    if record.state == TxnState::Empty {
        put_compact_len(&mut v, None);
    } else {
        put_compact_len(&mut v, Some(record.partitions.len()));
        for (topic, partitions) in &record.partitions {
            put_compact_string(&mut v, topic);
            put_compact_len(&mut v, Some(partitions.len()));
            for p in partitions {
                v.put_i32(*p);
            }
            put_uvarint(&mut v, 0);
        }
    }
    v.put_i64(record.last_update_ms);
    v.put_i64(record.start_ms);
    // Tagged fields, written only when not their default (as Kafka does).
    let tagged = [
        (
            0,
            record.previous_producer_id != -1,
            record.previous_producer_id.to_be_bytes().to_vec(),
        ),
        (
            1,
            record.next_producer_id != -1,
            record.next_producer_id.to_be_bytes().to_vec(),
        ),
        (
            2,
            record.client_version != 0,
            record.client_version.to_be_bytes().to_vec(),
        ),
    ];
    let present: Vec<_> = tagged.iter().filter(|t| t.1).collect();
    put_uvarint(&mut v, u32::try_from(present.len()).unwrap_or(0));
    for (tag, _, data) in present {
        put_tagged(&mut v, *tag, data);
    }
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
    if !(0..=1).contains(&version) {
        return Err(format!(
            "TransactionLogValue version {version} is not supported"
        ));
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state = TxnState::from_id(r.i8()?).ok_or("unknown transaction state")?;
    let count = r.array_len(flexible)?;
    let mut partitions = Vec::new();
    for _ in 0..count.unwrap_or(0) {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = r.array_len(flexible)?;
        let mut ids = Vec::new();
        for _ in 0..n.unwrap_or(0) {
            ids.push(r.i32()?);
        }
        if flexible {
            r.tagged_fields()?;
        }
        partitions.push((topic, ids));
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    let mut record = TxnRecord {
        producer_id,
        producer_epoch,
        timeout_ms,
        state,
        partitions,
        last_update_ms,
        start_ms,
        previous_producer_id: -1,
        next_producer_id: -1,
        client_version: 0,
    };
    if flexible {
        for (tag, data) in r.tagged_fields()? {
            let mut field = Reader(data);
            match tag {
                0 => record.previous_producer_id = field.i64()?,
                1 => record.next_producer_id = field.i64()?,
                2 => record.client_version = field.i16()?,
                _ => {}
            }
        }
    }
    Ok(Some((id, Some(record))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(state: TxnState, partitions: Vec<(String, Vec<i32>)>) -> TxnRecord {
        TxnRecord {
            producer_id: 7,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state,
            partitions,
            last_update_ms: 5,
            start_ms: 4,
            previous_producer_id: -1,
            next_producer_id: -1,
            client_version: 0,
        }
    }

    #[test]
    fn round_trip() {
        let mut prepared = record(
            TxnState::PrepareCommit,
            vec![("t".into(), vec![0, 2]), ("u".into(), vec![1])],
        );
        prepared.previous_producer_id = 6;
        prepared.client_version = 2;
        let decoded = decode(&key("tx"), Some(&value(&prepared))).unwrap();
        assert_eq!(decoded, Some(("tx".into(), Some(prepared))));
        let empty = record(TxnState::Empty, Vec::new());
        let bytes = value(&empty);
        // Version 1; a null partition array (compact: 0), as Kafka writes
        // for Empty; no tagged fields at their defaults.
        assert_eq!(&bytes[..2], &1i16.to_be_bytes());
        assert_eq!(bytes[17], 0);
        assert_eq!(bytes.len(), 2 + 8 + 2 + 4 + 1 + 1 + 8 + 8 + 1);
        assert_eq!(
            decode(&key("e"), Some(&bytes)).unwrap().unwrap().1,
            Some(empty)
        );
        assert_eq!(decode(&key("x"), None).unwrap(), Some(("x".into(), None)));
    }

    #[test]
    fn reads_version_0() {
        let mut v = BytesMut::new();
        v.put_i16(0);
        v.put_i64(7);
        v.put_i16(3);
        v.put_i32(60_000);
        v.put_i8(TxnState::Ongoing.id());
        v.put_i32(1);
        put_string(&mut v, "t");
        v.put_i32(2);
        v.put_i32(0);
        v.put_i32(2);
        v.put_i64(5);
        v.put_i64(4);
        assert_eq!(
            decode(&key("tx"), Some(&v)).unwrap().unwrap().1,
            Some(record(TxnState::Ongoing, vec![("t".into(), vec![0, 2])]))
        );
        assert!(decode(&key("tx"), Some(&v[..20])).is_err());
    }
}
