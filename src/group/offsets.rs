//! [`OffsetStore`]: committed offsets per group and partition, in memory:
//! the cache of the `__consumer_offsets` records (Kafka's
//! `OffsetMetadataManager`), and the reader of the sled tree in which older
//! strom versions kept them.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    /// The next offset the group will read.
    pub offset: i64,
    /// Leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch), for retention.
    pub commit_timestamp: i64,
}

impl CommittedOffset {
    /// The legacy sled layout (tests write it to check the migration).
    #[cfg(test)]
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(20 + self.metadata.len());
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.leader_epoch.to_be_bytes());
        out.extend_from_slice(&self.commit_timestamp.to_be_bytes());
        out.extend_from_slice(self.metadata.as_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            offset: i64::from_be_bytes(bytes.get(0..8)?.try_into().ok()?),
            leader_epoch: i32::from_be_bytes(bytes.get(8..12)?.try_into().ok()?),
            commit_timestamp: i64::from_be_bytes(bytes.get(12..20)?.try_into().ok()?),
            metadata: String::from_utf8_lossy(bytes.get(20..)?).into_owned(),
        })
    }
}

/// A topic partition.
pub type TopicPartition = (String, i32);

/// A committed offset and the log offset of the record that holds it.
type Stored = (CommittedOffset, i64);

/// Every committed offset, by group: a cache of the `__consumer_offsets`
/// records, changed only after the records are appended (or replayed).
/// Each keeps the log offset of its record, so a transaction's offsets,
/// made visible by a later marker, never replace a newer commit (Kafka's
/// `OffsetMetadataManager` does the same, and compaction keeps the newer).
#[derive(Debug, Default)]
pub struct OffsetStore {
    by_group: RwLock<HashMap<String, BTreeMap<TopicPartition, Stored>>>,
}

impl OffsetStore {
    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<TopicPartition, Stored>>> {
        self.by_group.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<TopicPartition, Stored>>> {
        self.by_group.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets (`Some`) or removes (`None`) one partition's committed offset,
    /// whose record is at log offset `record_offset`.
    pub fn apply(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: Option<CommittedOffset>,
        record_offset: i64,
    ) {
        let mut state = self.write();
        match offset {
            Some(offset) => {
                state
                    .entry(group.to_owned())
                    .or_default()
                    .insert((topic.to_owned(), partition), (offset, record_offset));
            }
            None => {
                if let Some(offsets) = state.get_mut(group) {
                    offsets.remove(&(topic.to_owned(), partition));
                    if offsets.is_empty() {
                        state.remove(group);
                    }
                }
            }
        }
    }

    /// Sets one partition's committed offset from a committed transaction,
    /// unless a newer record (a later commit) already set it.
    pub fn apply_if_newer(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: CommittedOffset,
        record_offset: i64,
    ) {
        let mut state = self.write();
        let offsets = state.entry(group.to_owned()).or_default();
        let key = (topic.to_owned(), partition);
        if offsets.get(&key).is_none_or(|(_, at)| *at < record_offset) {
            offsets.insert(key, (offset, record_offset));
        }
    }

    /// The committed offset of one partition.
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.read()
            .get(group)
            .and_then(|m| m.get(&(topic.to_owned(), partition)))
            .map(|(o, _)| o.clone())
    }

    /// Every committed offset of a group.
    pub fn group_offsets(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        self.read()
            .get(group)
            .map(|m| m.iter().map(|(k, (o, _))| (k.clone(), o.clone())).collect())
            .unwrap_or_default()
    }

    /// Every group with at least one committed offset.
    pub fn groups(&self) -> Vec<String> {
        self.read().keys().cloned().collect()
    }

    /// Whether the group has committed offsets.
    pub fn has_group(&self, group: &str) -> bool {
        self.read().get(group).is_some_and(|m| !m.is_empty())
    }

    /// The partitions of `group` for which `doomed(topic, partition, offset)` holds.
    pub fn select(
        &self,
        group: &str,
        mut doomed: impl FnMut(&str, i32, &CommittedOffset) -> bool,
    ) -> Vec<TopicPartition> {
        self.read()
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .filter(|((t, p), (o, _))| doomed(t, *p, o))
                    .map(|(k, _)| k.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Takes the committed offsets an older strom kept in the sled tree
/// `offsets` (before they became `__consumer_offsets` records), for the
/// coordinator to write as records; the tree is dropped once they are.
///
/// # Errors
/// sled fails.
pub fn legacy_offsets(db: &sled::Db) -> sled::Result<Vec<(String, String, i32, CommittedOffset)>> {
    if !db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == LEGACY_TREE.as_bytes())
    {
        return Ok(Vec::new());
    }
    let tree = db.open_tree(LEGACY_TREE)?;
    let mut found = Vec::new();
    for entry in tree.iter() {
        let (k, v) = entry?;
        match (parse_key(&k), CommittedOffset::decode(&v)) {
            (Some((group, topic, partition)), Some(offset)) => {
                found.push((group, topic, partition, offset));
            }
            _ => tracing::warn!("skipping a damaged legacy committed-offset record"),
        }
    }
    Ok(found)
}

/// Drops the legacy tree once its offsets are records.
///
/// # Errors
/// sled fails.
pub fn drop_legacy_offsets(db: &sled::Db) -> sled::Result<()> {
    db.drop_tree(LEGACY_TREE)?;
    db.flush()?;
    Ok(())
}

const LEGACY_TREE: &str = "offsets";

/// A legacy tree key: group, 0, topic, 0, partition (big-endian).
#[cfg(test)]
fn key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut key = Vec::with_capacity(group.len() + topic.len() + 6);
    key.extend_from_slice(group.as_bytes());
    key.push(0);
    key.extend_from_slice(topic.as_bytes());
    key.push(0);
    key.extend_from_slice(&partition.to_be_bytes());
    key
}

fn parse_key(key: &[u8]) -> Option<(String, String, i32)> {
    let (rest, partition) = key.split_last_chunk::<4>()?;
    let rest = rest.strip_suffix(&[0])?;
    let split = rest.iter().position(|b| *b == 0)?;
    let group = std::str::from_utf8(&rest[..split]).ok()?;
    let topic = std::str::from_utf8(&rest[split + 1..]).ok()?;
    Some((
        group.to_owned(),
        topic.to_owned(),
        i32::from_be_bytes(*partition),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(offset: i64) -> CommittedOffset {
        CommittedOffset {
            offset,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp: 5,
        }
    }

    #[test]
    fn apply_select_and_remove() {
        let store = OffsetStore::default();
        store.apply("g", "t", 0, Some(at(10)), 0);
        store.apply("g", "t", 1, Some(at(11)), 1);
        store.apply("g", "u", 0, Some(at(12)), 2);
        store.apply("h", "t", 0, Some(at(13)), 3);
        // A transaction's older record does not replace a newer commit.
        store.apply_if_newer("g", "t", 1, at(99), 0);
        assert_eq!(store.fetch("g", "t", 1), Some(at(11)));
        store.apply_if_newer("g", "t", 1, at(98), 5);
        assert_eq!(store.fetch("g", "t", 1), Some(at(98)));
        store.apply("g", "t", 1, Some(at(11)), 6);
        assert_eq!(store.fetch("g", "t", 1), Some(at(11)));
        assert_eq!(
            store.select("g", |t, _, _| t == "u"),
            vec![("u".to_owned(), 0)]
        );
        store.apply("g", "u", 0, None, 7);
        assert_eq!(store.fetch("g", "u", 0), None);
        assert_eq!(store.group_offsets("g").len(), 2);
        store.apply("h", "t", 0, None, 8);
        assert!(!store.has_group("h"));
        assert_eq!(store.groups(), vec!["g".to_owned()]);
    }

    #[test]
    fn legacy_tree_is_read_then_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        assert!(legacy_offsets(&db).unwrap().is_empty());
        let tree = db.open_tree(LEGACY_TREE).unwrap();
        tree.insert(key("g", "t", 3), at(7).encode()).unwrap();
        let found = legacy_offsets(&db).unwrap();
        assert_eq!(found, vec![("g".into(), "t".into(), 3, at(7))]);
        drop_legacy_offsets(&db).unwrap();
        assert!(legacy_offsets(&db).unwrap().is_empty());
    }
}
