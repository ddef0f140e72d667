//! The storage engine: one [`PartitionLog`] per partition, each a directory
//! `DATA_DIR/logs/<topic>-<partition>/` of segment files named by base
//! offset, indexed by a sled tree per partition.
//!
//! The log knows nothing of requests or clients. Segments are the truth;
//! the sled index is a cache that recovery rebuilds from them.

mod batch;
mod cleaner;
mod compressed;
mod index;
mod partition;
mod producer_state;
mod segment;
mod transactions;

pub use batch::{for_each_record, is_compressed, read_marker, BatchHeader, Marker};
pub use cleaner::CleanerConfig;
pub use index::LEGACY_VALUE_SIZE as LEGACY_INDEX_VALUE_SIZE;
pub use partition::{
    AppendError, AppendInfo, LogConfig, LogOffsets, NotReplicated, PartitionLog, ReadError,
    ReadResult, RecordError, VerificationGuard,
};
pub use producer_state::{ProducerSnapshot, SequenceError};
pub use segment::FileRegion;
pub use transactions::AbortedTxn;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tracing::{debug, error, warn};

/// Owns every partition log under `DATA_DIR/logs` (Kafka's `LogManager`).
#[derive(Debug)]
pub struct LogManager {
    root: PathBuf,
    db: sled::Db,
    partitions: RwLock<HashMap<(String, i32), Arc<PartitionLog>>>,
    /// In a cluster: a partition opened here counts as replicated (its
    /// high watermark waits for the followers) until the replica manager
    /// says otherwise, so nothing appended before it has looked at the
    /// partition is acknowledged as if this node were its only replica.
    replicated_until_told: std::sync::atomic::AtomicBool,
}

impl LogManager {
    /// Opens (creating if needed) the logs directory under `data_dir`; the
    /// partitions are opened with [`LogManager::open_partitions`].
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(data_dir: &Path, db: sled::Db) -> io::Result<Self> {
        let root = data_dir.join("logs");
        std::fs::create_dir_all(&root)?;
        Ok(Self {
            root,
            db,
            partitions: RwLock::new(HashMap::new()),
            replicated_until_told: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Partitions opened from now on count as replicated until the replica
    /// manager decides (a cluster member); see the field.
    pub fn open_as_replicated(&self) {
        self.replicated_until_told
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// The directory of one partition (Kafka's `<topic>-<partition>` name).
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.root.join(format!("{topic}-{partition}"))
    }

    /// Opens (recovering) or creates partitions `from..to` of `topic`.
    ///
    /// # Errors
    /// A partition cannot be opened or created.
    pub fn open_partitions(
        &self,
        topic: &str,
        from: i32,
        to: i32,
        config: &LogConfig,
        now_ms: i64,
    ) -> io::Result<()> {
        for partition in from..to {
            let dir = self.partition_dir(topic, partition);
            let log = PartitionLog::open(&dir, topic, partition, &self.db, config.clone(), now_ms)?;
            if self
                .replicated_until_told
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                log.set_replicated(true, 0);
            }
            self.write()
                .insert((topic.to_owned(), partition), Arc::new(log));
        }
        Ok(())
    }

    /// The log of one partition.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<PartitionLog>> {
        self.read().get(&(topic.to_owned(), partition)).cloned()
    }

    /// Applies new settings to every partition of `topic`.
    pub fn set_config(&self, topic: &str, config: &LogConfig) {
        for log in self.read().values().filter(|l| l.topic == topic) {
            log.set_config(config.clone());
        }
    }

    /// Removes every partition of `topic` (partitions `0..count`), with all
    /// their data and index entries.
    ///
    /// # Errors
    /// Files cannot be removed or sled fails.
    pub fn delete_topic(&self, topic: &str, count: i32) -> io::Result<()> {
        for partition in 0..count {
            let removed = self.write().remove(&(topic.to_owned(), partition));
            match removed {
                Some(log) => log.destroy(&self.db)?,
                None => match std::fs::remove_dir_all(self.partition_dir(topic, partition)) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                },
            }
        }
        Ok(())
    }

    /// One retention, flush and producer-expiry pass over every partition;
    /// failures are logged per partition and never stop the others.
    pub fn maintain(&self, now_ms: i64) {
        let logs: Vec<Arc<PartitionLog>> = self.read().values().cloned().collect();
        for log in logs {
            if let Err(e) = log.enforce_retention(now_ms) {
                error!(topic = %log.topic, partition = log.partition, cause = %e, "retention failed");
            }
            if let Err(e) = log.flush_if_due(now_ms) {
                error!(topic = %log.topic, partition = log.partition, cause = %e, "flush failed");
            }
            let expired = log.expire_producers(now_ms);
            if expired > 0 {
                debug!(topic = %log.topic, partition = log.partition, expired, "expired idle producers");
            }
        }
    }

    /// One cleaner pass: cleans the compacted log with the highest dirty
    /// ratio among those due (Kafka's filthiest log), if any; whether one
    /// was cleaned. `stop` is polled between batches (shutdown); a
    /// failure is logged for that partition only.
    pub fn clean_one(&self, now_ms: i64, config: &CleanerConfig, stop: &dyn Fn() -> bool) -> bool {
        let logs: Vec<Arc<PartitionLog>> = self.read().values().cloned().collect();
        let filthiest = logs
            .iter()
            .filter_map(|log| Some((log, cleaner::plan(log, now_ms)?)))
            .filter(|(_, plan)| plan.eligible)
            .max_by(|(_, a), (_, b)| a.ratio.total_cmp(&b.ratio));
        let Some((log, plan)) = filthiest else {
            return false;
        };
        match cleaner::clean(log, &plan, now_ms, config, stop) {
            Ok(outcome) => {
                debug!(topic = %log.topic, partition = log.partition, ?outcome, "cleaner pass");
                matches!(outcome, cleaner::Outcome::Cleaned(_))
            }
            Err(e) => {
                error!(topic = %log.topic, partition = log.partition, cause = %e, "cleaning failed");
                false
            }
        }
    }

    /// Fsyncs every partition and the index (on shutdown).
    pub fn flush_all(&self, now_ms: i64) {
        for log in self.read().values() {
            if let Err(e) = log.flush(now_ms) {
                warn!(topic = %log.topic, partition = log.partition, cause = %e, "flush on shutdown failed");
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<(String, i32), Arc<PartitionLog>>> {
        self.partitions.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<(String, i32), Arc<PartitionLog>>> {
        self.partitions.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Milliseconds since the Unix epoch: the one wall clock the log uses.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}
