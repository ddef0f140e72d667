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

fn put_string(out: &mut BytesMut, s: &str) {
    let mut end = s.len().min(i16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.put_i16(i16::try_from(end).unwrap_or(i16::MAX));
    out.put_slice(&s.as_bytes()[..end]);
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

/// A bounds-checked big-endian reader.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err("record is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i8(&mut self) -> Result<i8, String> {
        Ok(i8::from_be_bytes([self.take(1)?[0]]))
    }

    fn i16(&mut self) -> Result<i16, String> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i32(&mut self) -> Result<i32, String> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self) -> Result<i64, String> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }

    fn string(&mut self) -> Result<String, String> {
        let len = self.i16()?;
        let bytes = self.take(usize::try_from(len).map_err(|_| "null string")?)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "string is not UTF-8".into())
    }
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
