//! The quorum's storage in sled: the Raft log (tree `raft_log`, entries as
//! JSON under their big-endian index), the vote, the committed log id and
//! the last purged log id (tree `raft_state`), and the state machine: the
//! [`MetadataImage`] in memory, rebuilt at start from the last snapshot
//! (kept in `raft_state`) plus the committed entries openraft applies again.
//!
//! Every write that openraft must find after a crash (vote, appended
//! entries, snapshot) is flushed before it is acknowledged.

// openraft's traits fix the error type (`StorageError`, a large enum).
#![allow(clippy::result_large_err)]

use std::fmt::Debug;
use std::io::Cursor;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftLogReader, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership, Vote,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::image::{MetadataImage, MetadataResult};
use super::{NodeId, TypeConfig};

type Node = openraft::BasicNode;
type Result<T> = std::result::Result<T, StorageError<NodeId>>;

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const PURGED: &[u8] = b"last_purged";
const SNAPSHOT: &[u8] = b"snapshot";

fn io_error(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::write(e).into()
}

fn read_error(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::read(e).into()
}

/// The Raft log and vote.
#[derive(Debug, Clone)]
pub struct LogStore {
    log: sled::Tree,
    state: sled::Tree,
}

impl LogStore {
    /// The log kept in `db`.
    ///
    /// # Errors
    /// sled cannot open the trees.
    pub fn open(db: &sled::Db) -> std::result::Result<Self, sled::Error> {
        Ok(Self {
            log: db.open_tree("raft_log")?,
            state: db.open_tree("raft_state")?,
        })
    }

    fn get<T: for<'de> Deserialize<'de>>(&self, key: &[u8]) -> Result<Option<T>> {
        match self.state.get(key).map_err(|e| read_error(&e))? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| read_error(&e)),
            None => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| io_error(&e))?;
        self.state.insert(key, bytes).map_err(|e| io_error(&e))?;
        self.state.flush().map_err(|e| io_error(&e))?;
        Ok(())
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>> {
        match self.log.last().map_err(|e| read_error(&e))? {
            Some((_, bytes)) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| read_error(&e)),
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>> {
        let start = match range.start_bound() {
            Bound::Included(x) => *x,
            Bound::Excluded(x) => x.saturating_add(1),
            Bound::Unbounded => 0,
        };
        let mut entries = Vec::new();
        for item in self.log.range(start.to_be_bytes()..) {
            let (key, bytes) = item.map_err(|e| read_error(&e))?;
            let index = key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|e| read_error(&e))?;
            if !range.contains(&index) {
                break;
            }
            entries.push(serde_json::from_slice(&bytes).map_err(|e| read_error(&e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.get(PURGED)?;
        let last = self.last_entry()?.map(|e| e.log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id: last.or(last_purged_log_id),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<()> {
        self.put(VOTE, vote)
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>> {
        self.get(VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<()> {
        self.put(COMMITTED, &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>> {
        Ok(self.get::<Option<LogId<NodeId>>>(COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<()>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = serde_json::to_vec(&entry).map_err(|e| io_error(&e))?;
            batch.insert(&entry.log_id.index.to_be_bytes(), bytes);
        }
        self.log.apply_batch(batch).map_err(|e| io_error(&e))?;
        let flushed = self.log.flush().map(|_| ()).map_err(std::io::Error::other);
        let failed = flushed.as_ref().err().map(io_error);
        callback.log_io_completed(flushed);
        failed.map_or(Ok(()), Err)
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        let mut batch = sled::Batch::default();
        for item in self.log.range(log_id.index.to_be_bytes()..) {
            let (key, _) = item.map_err(|e| read_error(&e))?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(|e| io_error(&e))?;
        self.log.flush().map_err(|e| io_error(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<()> {
        self.put(PURGED, &log_id)?;
        let mut batch = sled::Batch::default();
        for item in self.log.range(..=log_id.index.to_be_bytes()) {
            let (key, _) = item.map_err(|e| read_error(&e))?;
            batch.remove(key);
        }
        self.log.apply_batch(batch).map_err(|e| io_error(&e))?;
        Ok(())
    }
}

/// A snapshot as stored: its metadata and the image as JSON.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredSnapshot {
    meta: SnapshotMeta<NodeId, Node>,
    data: Vec<u8>,
}

/// The state machine: the image, published to every reader after each
/// applied batch.
#[derive(Debug)]
pub struct StateMachine {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    image: MetadataImage,
    publish: watch::Sender<Arc<MetadataImage>>,
    state: sled::Tree,
    snapshots: u64,
}

impl StateMachine {
    /// The state machine over `db`, starting from its stored snapshot.
    ///
    /// # Errors
    /// sled fails, or the stored snapshot does not decode.
    pub fn open(
        db: &sled::Db,
        publish: watch::Sender<Arc<MetadataImage>>,
    ) -> std::result::Result<Self, String> {
        let state = db.open_tree("raft_state").map_err(|e| e.to_string())?;
        let mut machine = Self {
            last_applied: None,
            membership: StoredMembership::default(),
            image: MetadataImage::default(),
            publish,
            state,
            snapshots: 0,
        };
        let stored = machine.state.get(SNAPSHOT).map_err(|e| e.to_string())?;
        if let Some(bytes) = stored {
            let snapshot: StoredSnapshot = serde_json::from_slice(&bytes)
                .map_err(|e| format!("the stored metadata snapshot does not decode: {e}"))?;
            machine
                .install(&snapshot)
                .map_err(|e| format!("the stored metadata snapshot does not load: {e}"))?;
        }
        Ok(machine)
    }

    fn install(&mut self, snapshot: &StoredSnapshot) -> Result<()> {
        let image: MetadataImage = serde_json::from_slice(&snapshot.data)
            .map_err(|e| StorageIOError::read_snapshot(Some(snapshot.meta.signature()), &e))?;
        self.last_applied = snapshot.meta.last_log_id;
        self.membership = snapshot.meta.last_membership.clone();
        self.image = image;
        self.publish.send_replace(Arc::new(self.image.clone()));
        Ok(())
    }

    fn store_snapshot(&self, snapshot: &StoredSnapshot) -> Result<()> {
        let bytes = serde_json::to_vec(snapshot).map_err(|e| io_error(&e))?;
        self.state
            .insert(SNAPSHOT, bytes)
            .map_err(|e| io_error(&e))?;
        self.state.flush().map_err(|e| io_error(&e))?;
        Ok(())
    }

    fn stored_snapshot(&self) -> Result<Option<StoredSnapshot>> {
        match self.state.get(SNAPSHOT).map_err(|e| read_error(&e))? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| read_error(&e)),
            None => Ok(None),
        }
    }
}

/// Builds a snapshot of the image as it was when asked.
#[derive(Debug)]
pub struct SnapshotBuilder {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, Node>,
    image: MetadataImage,
    state: sled::Tree,
    number: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>> {
        let data = serde_json::to_vec(&self.image).map_err(|e| io_error(&e))?;
        let snapshot_id = match self.last_applied {
            Some(last) => format!("{}-{}-{}", last.leader_id, last.index, self.number),
            None => format!("--{}", self.number),
        };
        let meta = SnapshotMeta {
            last_log_id: self.last_applied,
            last_membership: self.membership.clone(),
            snapshot_id,
        };
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: data.clone(),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| io_error(&e))?;
        self.state
            .insert(SNAPSHOT, bytes)
            .map_err(|e| io_error(&e))?;
        self.state.flush().map_err(|e| io_error(&e))?;
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, Node>)> {
        Ok((self.last_applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetadataResult>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let result = match &entry.payload {
                EntryPayload::Blank => {
                    self.image.skip(entry.log_id.index);
                    MetadataResult::default()
                }
                EntryPayload::Normal(command) => self.image.apply(entry.log_id.index, command),
                EntryPayload::Membership(membership) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
                    self.image.skip(entry.log_id.index);
                    MetadataResult::default()
                }
            };
            results.push(result);
        }
        self.publish.send_replace(Arc::new(self.image.clone()));
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshots += 1;
        SnapshotBuilder {
            last_applied: self.last_applied,
            membership: self.membership.clone(),
            image: self.image.clone(),
            state: self.state.clone(),
            number: self.snapshots,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, Node>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<()> {
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: snapshot.into_inner(),
        };
        self.install(&stored)?;
        self.store_snapshot(&stored)
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>> {
        Ok(self.stored_snapshot()?.map(|s| Snapshot {
            meta: s.meta,
            snapshot: Box::new(Cursor::new(s.data)),
        }))
    }
}
