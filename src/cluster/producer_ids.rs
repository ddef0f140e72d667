//! [`ProducerIdManager`]: producer ids handed out from blocks of
//! [`BLOCK_SIZE`], as Kafka's brokers take them from the controller
//! (`ProducerIdsRecord`). On one node the block is reserved in the sled
//! tree `producer_ids` (flushed to disk before any id of it is used), so
//! an id is never handed out twice, across crashes included; in a cluster
//! the blocks come from the metadata quorum ([`ProducerIdManager::with_source`]).

use std::sync::Mutex;

use crate::store::{unversioned, versioned};

/// Ids per block (Kafka's `ProducerIdsBlock.PRODUCER_ID_BLOCK_SIZE`).
pub const BLOCK_SIZE: i64 = 1000;

const NEXT_BLOCK_KEY: &str = "next_block_start";

/// The current block: ids `next..end` are free.
#[derive(Debug)]
struct Block {
    next: i64,
    end: i64,
}

/// Reserves the next block elsewhere: returns its first id.
pub type BlockSource = Box<dyn Fn(i64) -> Result<i64, String> + Send + Sync>;

/// Hands out producer ids.
pub struct ProducerIdManager {
    tree: sled::Tree,
    block: Mutex<Block>,
    source: Option<BlockSource>,
}

impl std::fmt::Debug for ProducerIdManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerIdManager")
            .field("block", &self.block)
            .finish_non_exhaustive()
    }
}

impl ProducerIdManager {
    /// Opens the allocator. A store from before blocks existed starts past
    /// every id sled's id generator handed out then.
    ///
    /// # Errors
    /// sled fails.
    pub fn open(db: &sled::Db) -> sled::Result<Self> {
        let tree = db.open_tree("producer_ids")?;
        if tree.get(NEXT_BLOCK_KEY)?.is_none() {
            let start = i64::try_from(db.generate_id()?).unwrap_or(0);
            tree.insert(NEXT_BLOCK_KEY, versioned(&start.to_be_bytes()))?;
            tree.flush()?;
        }
        Ok(Self {
            tree,
            block: Mutex::new(Block { next: 0, end: 0 }),
            source: None,
        })
    }

    /// Takes blocks from `source` (the metadata quorum) instead of the
    /// local store.
    #[must_use]
    pub fn with_source(mut self, source: BlockSource) -> Self {
        self.source = Some(source);
        self
    }

    /// The next producer id.
    ///
    /// # Errors
    /// The next block cannot be reserved (sled fails, or the stored value
    /// is damaged).
    pub fn next_id(&self) -> Result<i64, String> {
        let mut block = self.block.lock().unwrap_or_else(|e| e.into_inner());
        if block.next >= block.end {
            let start = match &self.source {
                Some(source) => source(BLOCK_SIZE)?,
                None => self.reserve_block()?,
            };
            *block = Block {
                next: start,
                end: start + BLOCK_SIZE,
            };
        }
        let id = block.next;
        block.next += 1;
        Ok(id)
    }

    /// Moves the stored next block start one block on, durably, and returns
    /// the reserved block's start.
    fn reserve_block(&self) -> Result<i64, String> {
        let stored = self
            .tree
            .get(NEXT_BLOCK_KEY)
            .map_err(|e| e.to_string())?
            .ok_or("no producer id block is stored")?;
        let start = unversioned(&stored)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_be_bytes)
            .ok_or("the stored producer id block is damaged")?;
        let next = start
            .checked_add(BLOCK_SIZE)
            .ok_or("producer ids are exhausted")?;
        self.tree
            .insert(NEXT_BLOCK_KEY, versioned(&next.to_be_bytes()))
            .and_then(|_| self.tree.flush())
            .map_err(|e| e.to_string())?;
        Ok(start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_never_reused_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let db = crate::store::open(dir.path()).unwrap();
            let ids = ProducerIdManager::open(&db).unwrap();
            for _ in 0..1500 {
                assert!(seen.insert(ids.next_id().unwrap()));
            }
        }
        assert_eq!(seen.len(), 4500);
    }
}
