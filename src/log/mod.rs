//! The storage engine: one directory of segment files per partition under
//! `DATA_DIR/logs/<topic>-<partition>/`.
//!
//! The log knows nothing of requests or clients. This first cut owns the
//! partition directories (created with the topic, removed with it); the
//! partition log itself (segments, sled index, recovery) builds on it.

use std::io;
use std::path::{Path, PathBuf};

/// Owns every partition directory under `DATA_DIR/logs`.
#[derive(Debug)]
pub struct LogManager {
    root: PathBuf,
}

impl LogManager {
    /// Opens (creating if needed) the logs directory under `data_dir`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(data_dir: &Path) -> io::Result<Self> {
        let root = data_dir.join("logs");
        std::fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// The directory of one partition (Kafka's `<topic>-<partition>` name).
    pub fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.root.join(format!("{topic}-{partition}"))
    }

    /// Creates the directories of partitions `from..to` of `topic`.
    ///
    /// # Errors
    /// A directory cannot be created (disk full, permissions).
    pub fn create_partitions(&self, topic: &str, from: i32, to: i32) -> io::Result<()> {
        for partition in from..to {
            std::fs::create_dir_all(self.partition_dir(topic, partition))?;
        }
        Ok(())
    }

    /// Removes every partition directory of `topic` (partitions `0..count`)
    /// and all data in them.
    ///
    /// # Errors
    /// A directory exists but cannot be removed.
    pub fn delete_topic(&self, topic: &str, count: i32) -> io::Result<()> {
        for partition in 0..count {
            match std::fs::remove_dir_all(self.partition_dir(topic, partition)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_and_delete_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let logs = LogManager::open(dir.path()).unwrap();
        logs.create_partitions("t", 0, 3).unwrap();
        assert!(dir.path().join("logs/t-2").is_dir());
        logs.delete_topic("t", 3).unwrap();
        assert!(!dir.path().join("logs/t-0").exists());
        logs.delete_topic("t", 3).unwrap();
    }
}
