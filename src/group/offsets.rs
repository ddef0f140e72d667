//! [`OffsetStore`]: committed offsets per group and partition, in memory
//! for reads and written through to the sled tree `offsets`, so they
//! survive restarts (Kafka's `OffsetMetadataManager`, without
//! `__consumer_offsets`).

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

/// All committed offsets.
#[derive(Debug)]
pub struct OffsetStore {
    tree: sled::Tree,
    by_group: RwLock<HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>>,
}

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

impl OffsetStore {
    /// Loads every stored offset; damaged records are skipped with a warning.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db) -> sled::Result<Self> {
        let tree = db.open_tree("offsets")?;
        let mut by_group: HashMap<String, BTreeMap<TopicPartition, CommittedOffset>> =
            HashMap::new();
        for entry in tree.iter() {
            let (k, v) = entry?;
            match (parse_key(&k), CommittedOffset::decode(&v)) {
                (Some((group, topic, partition)), Some(offset)) => {
                    by_group
                        .entry(group)
                        .or_default()
                        .insert((topic, partition), offset);
                }
                _ => tracing::warn!("skipping a damaged committed-offset record"),
            }
        }
        Ok(Self {
            tree,
            by_group: RwLock::new(by_group),
        })
    }

    fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>>
    {
        self.by_group.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<TopicPartition, CommittedOffset>>>
    {
        self.by_group.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores one offset (sled first, then memory).
    ///
    /// # Errors
    /// sled fails.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: CommittedOffset,
    ) -> sled::Result<()> {
        self.tree
            .insert(key(group, topic, partition), offset.encode())?;
        self.write()
            .entry(group.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), offset);
        Ok(())
    }

    /// The committed offset of one partition.
    pub fn fetch(&self, group: &str, topic: &str, partition: i32) -> Option<CommittedOffset> {
        self.read()
            .get(group)
            .and_then(|m| m.get(&(topic.to_owned(), partition)))
            .cloned()
    }

    /// Every committed offset of a group.
    pub fn group_offsets(&self, group: &str) -> Vec<(TopicPartition, CommittedOffset)> {
        self.read()
            .get(group)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
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

    /// Removes offsets of `group` for which `doomed(topic, partition, offset)` holds.
    ///
    /// # Errors
    /// sled fails.
    pub fn remove_where(
        &self,
        group: &str,
        mut doomed: impl FnMut(&str, i32, &CommittedOffset) -> bool,
    ) -> sled::Result<usize> {
        let mut state = self.write();
        let Some(offsets) = state.get_mut(group) else {
            return Ok(0);
        };
        let keys: Vec<TopicPartition> = offsets
            .iter()
            .filter(|((t, p), o)| doomed(t, *p, o))
            .map(|(k, _)| k.clone())
            .collect();
        for (topic, partition) in &keys {
            self.tree.remove(key(group, topic, *partition))?;
            offsets.remove(&(topic.clone(), *partition));
        }
        if offsets.is_empty() {
            state.remove(group);
        }
        if !keys.is_empty() {
            self.tree.flush()?;
        }
        Ok(keys.len())
    }

    /// Removes every group's offsets of `topic` (the topic was deleted).
    ///
    /// # Errors
    /// sled fails.
    pub fn remove_topic(&self, topic: &str) -> sled::Result<()> {
        for group in self.groups() {
            self.remove_where(&group, |t, _, _| t == topic)?;
        }
        Ok(())
    }
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
    fn survives_reopen_and_removal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            let store = OffsetStore::open(&db).unwrap();
            store.commit("g", "t", 0, at(10)).unwrap();
            store.commit("g", "t", 1, at(11)).unwrap();
            store.commit("g", "u", 0, at(12)).unwrap();
            store.commit("h", "t", 0, at(13)).unwrap();
            store.remove_topic("u").unwrap();
            db.flush().unwrap();
        }
        let db = crate::broker::open_metadata_store(dir.path()).unwrap();
        let store = OffsetStore::open(&db).unwrap();
        assert_eq!(store.fetch("g", "t", 1), Some(at(11)));
        assert_eq!(store.fetch("g", "u", 0), None);
        assert_eq!(store.group_offsets("g").len(), 2);
        store.remove_where("h", |_, _, _| true).unwrap();
        assert!(!store.has_group("h"));
        let mut groups = store.groups();
        groups.sort();
        assert_eq!(groups, vec!["g".to_owned()]);
    }
}
