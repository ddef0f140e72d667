//! [`SegmentIndex`]: the per-partition batch index in sled, one entry per
//! stored batch, keyed by the batch's last offset (big-endian, so sled's
//! byte order is offset order and "the batch holding offset o" is the
//! first key ≥ o).
//!
//! The index is a cache over the segment files: recovery rebuilds any part
//! of it from the segments, so a lost or damaged entry never loses a record.

use std::ops::RangeBounds;

/// Where one batch is and what recovery and lookups need to know about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// First offset of the batch.
    pub base_offset: i64,
    /// Last offset of the batch (the key).
    pub last_offset: i64,
    /// Base offset of the segment file holding it.
    pub segment: i64,
    /// Byte position in that file.
    pub position: u64,
    /// Size in bytes.
    pub size: u32,
    /// The batch's max timestamp.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// First sequence number, or -1.
    pub base_sequence: i32,
    /// The batch attributes (transactional and control bits among them).
    pub attributes: i16,
}

/// An entry's fields, after the version byte.
const FIELDS_SIZE: usize = 8 + 8 + 8 + 4 + 8 + 8 + 2 + 4 + 2;
/// A stored entry: version byte, then the fields.
const VALUE_SIZE: usize = 1 + FIELDS_SIZE;
/// An entry of store format 1 had no version byte.
pub const LEGACY_VALUE_SIZE: usize = FIELDS_SIZE;

impl BatchEntry {
    fn key(offset: i64) -> [u8; 8] {
        offset.max(0).to_be_bytes()
    }

    fn encode(&self) -> [u8; VALUE_SIZE] {
        let mut out = [0u8; VALUE_SIZE];
        out[0] = crate::store::VALUE_VERSION;
        let mut at = 1;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(&self.base_offset.to_be_bytes());
        put(&self.segment.to_be_bytes());
        put(&self.position.to_be_bytes());
        put(&self.size.to_be_bytes());
        put(&self.max_timestamp.to_be_bytes());
        put(&self.producer_id.to_be_bytes());
        put(&self.producer_epoch.to_be_bytes());
        put(&self.base_sequence.to_be_bytes());
        put(&self.attributes.to_be_bytes());
        out
    }

    /// Decodes a stored entry; `None` for a damaged one.
    fn decode(key: &[u8], value: &[u8]) -> Option<Self> {
        if value.len() != VALUE_SIZE || key.len() != 8 || value[0] != crate::store::VALUE_VERSION {
            return None;
        }
        let mut at = 1;
        let mut take = |n: usize| {
            let slice = &value[at..at + n];
            at += n;
            slice
        };
        let i64_of = |s: &[u8]| s.try_into().ok().map(i64::from_be_bytes);
        let base_offset = i64_of(take(8))?;
        let segment = i64_of(take(8))?;
        let position = take(8).try_into().ok().map(u64::from_be_bytes)?;
        let size = take(4).try_into().ok().map(u32::from_be_bytes)?;
        let max_timestamp = i64_of(take(8))?;
        let producer_id = i64_of(take(8))?;
        let producer_epoch = take(2).try_into().ok().map(i16::from_be_bytes)?;
        let base_sequence = take(4).try_into().ok().map(i32::from_be_bytes)?;
        let attributes = take(2).try_into().ok().map(i16::from_be_bytes)?;
        Some(Self {
            base_offset,
            last_offset: i64_of(key)?,
            segment,
            position,
            size,
            max_timestamp,
            producer_id,
            producer_epoch,
            base_sequence,
            attributes,
        })
    }
}

/// One partition's batch index.
#[derive(Debug, Clone)]
pub struct SegmentIndex {
    tree: sled::Tree,
}

/// The sled tree name of a partition's index.
fn tree_name(topic: &str, partition: i32) -> String {
    format!("index/{topic}/{partition}")
}

impl SegmentIndex {
    /// Opens (creating if needed) the index of one partition.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db, topic: &str, partition: i32) -> sled::Result<Self> {
        Ok(Self {
            tree: db.open_tree(tree_name(topic, partition))?,
        })
    }

    /// Drops the whole index of one partition.
    ///
    /// # Errors
    /// sled fails.
    pub fn destroy(db: &sled::Db, topic: &str, partition: i32) -> sled::Result<()> {
        db.drop_tree(tree_name(topic, partition))?;
        Ok(())
    }

    /// Records one batch.
    ///
    /// # Errors
    /// sled fails.
    pub fn insert(&self, entry: &BatchEntry) -> sled::Result<()> {
        self.tree
            .insert(BatchEntry::key(entry.last_offset), &entry.encode()[..])?;
        Ok(())
    }

    /// Entries whose last offset lies in `range`, in offset order; damaged
    /// entries are skipped.
    pub fn range(&self, range: impl RangeBounds<i64>) -> impl Iterator<Item = BatchEntry> + '_ {
        use std::ops::Bound;
        let map = |b: Bound<&i64>| match b {
            Bound::Included(o) => Bound::Included(BatchEntry::key(*o)),
            Bound::Excluded(o) => Bound::Excluded(BatchEntry::key(*o)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.tree
            .range::<[u8; 8], _>((map(range.start_bound()), map(range.end_bound())))
            .filter_map(Result::ok)
            .filter_map(|(k, v)| BatchEntry::decode(&k, &v))
    }

    /// The batch holding `offset`, or the first one after it.
    pub fn find(&self, offset: i64) -> Option<BatchEntry> {
        self.range(offset..).next()
    }

    /// Makes every change so far durable.
    ///
    /// # Errors
    /// sled fails.
    pub fn flush(&self) -> sled::Result<()> {
        self.tree.flush()?;
        Ok(())
    }

    /// Removes the entries whose last offset lies in `range`.
    ///
    /// # Errors
    /// sled fails.
    pub fn remove_range(&self, range: impl RangeBounds<i64>) -> sled::Result<()> {
        let keys: Vec<i64> = self.range(range).map(|e| e.last_offset).collect();
        for key in keys {
            self.tree.remove(BatchEntry::key(key))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: i64, last: i64) -> BatchEntry {
        BatchEntry {
            base_offset: base,
            last_offset: last,
            segment: 0,
            position: u64::try_from(base).unwrap() * 10,
            size: 10,
            max_timestamp: base,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
        }
    }

    #[test]
    fn find_by_offset() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let index = SegmentIndex::open(&db, "t", 0).unwrap();
        for (base, last) in [(0, 4), (5, 5), (6, 9)] {
            index.insert(&entry(base, last)).unwrap();
        }
        assert_eq!(index.find(3).unwrap().base_offset, 0);
        assert_eq!(index.find(5).unwrap().base_offset, 5);
        assert_eq!(index.find(7).unwrap().base_offset, 6);
        assert!(index.find(10).is_none());
        index.remove_range(5..).unwrap();
        assert_eq!(index.range(..).count(), 1);
        SegmentIndex::destroy(&db, "t", 0).unwrap();
        let index = SegmentIndex::open(&db, "t", 0).unwrap();
        assert_eq!(index.range(..).count(), 0);
    }
}
