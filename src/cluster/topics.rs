//! The topic registry: every topic's id, partition assignment and config
//! overrides, kept in memory for reads and written through to the sled
//! tree `topics` so a restart keeps them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{ApiError, Error};

/// One topic's metadata as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// The topic name.
    pub name: String,
    /// The topic id (Metadata v10+, Fetch v13+ address topics by it).
    pub id: Uuid,
    /// Per partition, in partition order, the replica node ids (leader first).
    pub partitions: Vec<Vec<i32>>,
    /// Topic-level config overrides (validated before they get here).
    pub configs: BTreeMap<String, String>,
}

impl TopicMeta {
    /// The number of partitions.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.partitions.len()).unwrap_or(i32::MAX)
    }

    /// The replication factor (replicas of partition 0).
    pub fn replication_factor(&self) -> i16 {
        self.partitions
            .first()
            .map_or(0, |r| i16::try_from(r.len()).unwrap_or(i16::MAX))
    }
}

#[derive(Debug, Default)]
struct Topics {
    by_name: BTreeMap<String, Arc<TopicMeta>>,
    by_id: HashMap<Uuid, String>,
}

/// All topics. Reads take a shared lock on the in-memory map; every change
/// runs under one writer mutex, writes and flushes sled first and then the
/// map, so a reader never sees a topic that is not durably stored.
#[derive(Debug)]
pub struct TopicRegistry {
    tree: sled::Tree,
    state: RwLock<Topics>,
    /// Serialises changes so check-then-write (create if absent) is atomic.
    writer: Mutex<()>,
}

impl TopicRegistry {
    /// Loads every stored topic.
    ///
    /// # Errors
    /// sled fails, or a stored record does not decode.
    pub fn open(db: &sled::Db) -> Result<Self, Error> {
        let tree = db.open_tree("topics")?;
        let mut topics = Topics::default();
        for entry in tree.iter() {
            let (key, value) = entry?;
            let key = String::from_utf8_lossy(&key).into_owned();
            let json = crate::store::unversioned(&value)
                .ok_or_else(|| Error::UnknownValueVersion { key: key.clone() })?;
            let meta: TopicMeta = serde_json::from_slice(json)
                .map_err(|source| Error::CorruptMetadata { key, source })?;
            topics.by_id.insert(meta.id, meta.name.clone());
            topics.by_name.insert(meta.name.clone(), Arc::new(meta));
        }
        Ok(Self {
            tree,
            state: RwLock::new(topics),
            writer: Mutex::new(()),
        })
    }

    /// The topic named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<TopicMeta>> {
        self.read().by_name.get(name).cloned()
    }

    /// The topic with id `id`.
    pub fn get_by_id(&self, id: &Uuid) -> Option<Arc<TopicMeta>> {
        let state = self.read();
        state
            .by_id
            .get(id)
            .and_then(|name| state.by_name.get(name))
            .cloned()
    }

    /// Every topic, ordered by name.
    pub fn all(&self) -> Vec<Arc<TopicMeta>> {
        self.read().by_name.values().cloned().collect()
    }

    /// Checks that a topic named `name` may be created: no topic has that
    /// name, nor one that differs only by '.' against '_' (Kafka's metric
    /// names would collide).
    ///
    /// # Errors
    /// TOPIC_ALREADY_EXISTS or INVALID_TOPIC_EXCEPTION, with Kafka's messages.
    pub fn check_new_name(&self, name: &str) -> Result<(), ApiError> {
        let state = self.read();
        if state.by_name.contains_key(name) {
            return Err(ApiError::new(
                ResponseError::TopicAlreadyExists,
                format!("Topic '{name}' already exists."),
            ));
        }
        if !name.contains(['.', '_']) {
            return Ok(());
        }
        let unify = |n: &str| n.replace('.', "_");
        let unified = unify(name);
        match state.by_name.keys().find(|other| unify(other) == unified) {
            Some(other) => Err(ApiError::new(
                ResponseError::InvalidTopicException,
                format!("Topic '{name}' collides with existing topic: {other}"),
            )),
            None => Ok(()),
        }
    }

    /// Adds a topic.
    ///
    /// # Errors
    /// As [`TopicRegistry::check_new_name`], or UNKNOWN_SERVER_ERROR if it
    /// cannot be stored.
    pub fn create(&self, meta: TopicMeta) -> Result<Arc<TopicMeta>, ApiError> {
        let _writer = self.lock_writer();
        self.check_new_name(&meta.name)?;
        self.store(&meta)?;
        let meta = Arc::new(meta);
        let mut state = self.write();
        state.by_id.insert(meta.id, meta.name.clone());
        state.by_name.insert(meta.name.clone(), meta.clone());
        Ok(meta)
    }

    /// Changes a topic with `change`, which may refuse with an error.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, the error `change` returns, or
    /// UNKNOWN_SERVER_ERROR if the result cannot be stored.
    pub fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut TopicMeta) -> Result<(), ApiError>,
    ) -> Result<Arc<TopicMeta>, ApiError> {
        let _writer = self.lock_writer();
        let mut meta = self.get(name).ok_or_else(unknown_topic)?.as_ref().clone();
        change(&mut meta)?;
        self.store(&meta)?;
        let meta = Arc::new(meta);
        self.write().by_name.insert(meta.name.clone(), meta.clone());
        Ok(meta)
    }

    /// Removes a topic and returns what it was.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, or UNKNOWN_SERVER_ERROR if sled fails.
    pub fn delete(&self, name: &str) -> Result<Arc<TopicMeta>, ApiError> {
        let _writer = self.lock_writer();
        let meta = self.get(name).ok_or_else(unknown_topic)?;
        self.tree
            .remove(name.as_bytes())
            .and_then(|_| self.tree.flush())
            .map_err(|e| storage_failure(&e))?;
        let mut state = self.write();
        state.by_name.remove(name);
        state.by_id.remove(&meta.id);
        Ok(meta)
    }

    fn store(&self, meta: &TopicMeta) -> Result<(), ApiError> {
        let value =
            crate::store::versioned(&serde_json::to_vec(meta).map_err(|e| storage_failure(&e))?);
        // Flushed before the change is acknowledged: sled otherwise writes
        // back only every 500 ms, and a crash would forget the topic.
        self.tree
            .insert(meta.name.as_bytes(), value)
            .and_then(|_| self.tree.flush())
            .map_err(|e| storage_failure(&e))?;
        Ok(())
    }

    // A poisoned lock only means another thread panicked mid-read or after
    // its sled write; the map itself is always whole, so keep serving.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Topics> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Topics> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn unknown_topic() -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        "This server does not host this topic-partition.",
    )
}

fn storage_failure(e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(cause = %e, "cannot store topic metadata");
    ApiError::new(ResponseError::UnknownServerError, e.to_string())
}

/// Checks a topic name as Kafka's `Topic.validate` does.
///
/// # Errors
/// INVALID_TOPIC_EXCEPTION with Kafka's message.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::new(ResponseError::InvalidTopicException, m));
    if name.is_empty() {
        return invalid("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return invalid("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return invalid(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return invalid(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicMeta {
        TopicMeta {
            name: name.into(),
            id: Uuid::new_v4(),
            partitions: vec![vec![1]; 2],
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let created = {
            let db = sled::open(dir.path()).unwrap();
            let registry = TopicRegistry::open(&db).unwrap();
            let created = registry.create(topic("a")).unwrap();
            registry.create(topic("b")).unwrap();
            registry.delete("b").unwrap();
            registry
                .update("a", |m| {
                    m.configs.insert("retention.ms".into(), "1".into());
                    Ok(())
                })
                .unwrap();
            db.flush().unwrap();
            created
        };
        let db = crate::store::open(dir.path()).unwrap();
        let registry = TopicRegistry::open(&db).unwrap();
        assert_eq!(registry.all().len(), 1);
        let a = registry.get_by_id(&created.id).unwrap();
        assert_eq!(a.configs.get("retention.ms").map(String::as_str), Some("1"));
        assert!(registry.get("b").is_none());
    }

    #[test]
    fn duplicate_and_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let registry = TopicRegistry::open(&db).unwrap();
        registry.create(topic("a")).unwrap();
        assert_eq!(
            registry.create(topic("a")).unwrap_err().code,
            ResponseError::TopicAlreadyExists
        );
        assert_eq!(
            registry.delete("zz").unwrap_err().code,
            ResponseError::UnknownTopicOrPartition
        );
    }

    #[test]
    fn topic_names() {
        for bad in ["", ".", "..", "a b", "ä", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "A.b_c-9", &"x".repeat(249)] {
            assert!(validate_topic_name(good).is_ok(), "{good:?}");
        }
    }
}
