//! The transaction coordinator (Kafka's `TransactionCoordinator` and
//! `TransactionStateManager`): each transactional id's producer id, epoch
//! and transaction state, kept as records in `__transaction_state` and
//! replayed on start, like the group coordinator's.
//!
//! Both transaction protocol versions (KIP-890). Version 1 clients add
//! partitions with AddPartitionsToTxn / AddOffsetsToTxn and keep their
//! epoch across transactions. Version 2 clients (Produce v12+,
//! TxnOffsetCommit v5+, EndTxn v5+) add partitions implicitly with their
//! first write, and every EndTxn bumps the epoch: the markers carry the
//! new epoch, the answer hands it to the producer, and an exhausted epoch
//! moves the id to a new producer id. A retried EndTxn (the old epoch, or
//! the old producer id after a rotation) gets the same answer.
//!
//! States (Kafka's ids): Empty → Ongoing (partitions added) →
//! PrepareCommit / PrepareAbort (EndTxn; the record is in the log before any
//! marker) → CompleteCommit / CompleteAbort (every partition has its
//! marker) → Ongoing again with the next AddPartitions. On one node the
//! markers are written right after the Prepare record, before EndTxn
//! answers; a crash in between leaves the Prepare record, and the next
//! maintenance tick after loading writes the markers again (a marker twice
//! is harmless) and completes. Ongoing transactions past their timeout are
//! aborted with the epoch bumped (the producer is fenced), as Kafka does.
//!
//! Each transactional id lives behind its own mutex; markers are written
//! under it, and a transactional Produce checks and appends under it too
//! ([`TransactionCoordinator::append_verified`]), so no data of a
//! transaction can land after its marker (a hanging transaction).

mod records;

pub use records::TxnRecord;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use kafka_protocol::error::ResponseError;
use tracing::{error, info, warn};

use crate::coordinator::{self, Replayable, Replayed, StateTopic};
use crate::log::{now_ms, PartitionLog};

/// The internal topic that holds every transactional id's state.
pub const TXN_TOPIC: &str = "__transaction_state";

/// The largest epoch before a producer id is replaced (Kafka rotates the
/// producer id when `epoch >= Short.MaxValue - 1`).
const MAX_EPOCH: i16 = i16::MAX - 1;

/// The longest transactional id its record's key can hold (an int16-length
/// string); a longer one is INVALID_REQUEST rather than stored cut.
const MAX_ID_BYTES: usize = i16::MAX as usize;

/// A transaction's state, with Kafka's ids and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TxnState {
    /// No transaction yet (or after InitProducerId).
    Empty,
    /// Partitions added, not ended.
    Ongoing,
    /// Commit decided; markers being written.
    PrepareCommit,
    /// Abort decided; markers being written.
    PrepareAbort,
    /// Committed.
    CompleteCommit,
    /// Aborted.
    CompleteAbort,
    /// Expired.
    Dead,
    /// Being fenced by a new producer.
    PrepareEpochFence,
}

impl TxnState {
    const ALL: [Self; 8] = [
        Self::Empty,
        Self::Ongoing,
        Self::PrepareCommit,
        Self::PrepareAbort,
        Self::CompleteCommit,
        Self::CompleteAbort,
        Self::Dead,
        Self::PrepareEpochFence,
    ];

    /// Kafka's state id (the record's status byte).
    pub fn id(self) -> i8 {
        match self {
            Self::Empty => 0,
            Self::Ongoing => 1,
            Self::PrepareCommit => 2,
            Self::PrepareAbort => 3,
            Self::CompleteCommit => 4,
            Self::CompleteAbort => 5,
            Self::Dead => 6,
            Self::PrepareEpochFence => 7,
        }
    }

    /// The state with Kafka's id `id`.
    pub fn from_id(id: i8) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.id() == id)
    }

    /// Kafka's name (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            Self::Empty => "Empty",
            Self::Ongoing => "Ongoing",
            Self::PrepareCommit => "PrepareCommit",
            Self::PrepareAbort => "PrepareAbort",
            Self::CompleteCommit => "CompleteCommit",
            Self::CompleteAbort => "CompleteAbort",
            Self::Dead => "Dead",
            Self::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    /// The state named `name` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(name))
    }
}

/// What the coordinator needs from the broker: markers written into
/// partition logs (the broker knows the logs and the group coordinator;
/// markers in `__consumer_offsets` make transactional offsets visible),
/// and new producer ids.
pub trait TxnHost {
    /// Appends a marker of `producer_id` at `epoch` to each of
    /// `partitions` (on their leaders, wherever they are), once each is on
    /// every in-sync replica; one result per partition, in order.
    ///
    /// # Errors
    /// Per partition: it refuses the marker (gone, fenced epoch, storage)
    /// or its leader cannot be reached.
    fn write_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Vec<Result<(), ResponseError>>;

    /// A producer id never handed out before.
    ///
    /// # Errors
    /// The allocator cannot store its next block.
    fn next_producer_id(&self) -> Result<i64, ResponseError>;
}

/// One transactional id.
#[derive(Debug, Clone)]
struct TxnMetadata {
    producer_id: i64,
    /// The producer id before a rotation (KIP-360 retries).
    last_producer_id: i64,
    epoch: i16,
    /// The epoch before the last bump (KIP-360: a retried InitProducerId).
    last_epoch: i16,
    timeout_ms: i32,
    state: TxnState,
    partitions: BTreeSet<(String, i32)>,
    start_ms: i64,
    last_update_ms: i64,
    /// The transaction protocol version of the client's last transaction
    /// (0 for version 1 clients, 2 for version 2).
    client_version: i16,
}

impl TxnMetadata {
    /// Replaces an exhausted producer id with a new one at epoch 0,
    /// remembering the old one (retries of the old producer).
    fn move_to_new_producer_id(&mut self, host: &dyn TxnHost) -> Result<(), ResponseError> {
        self.last_producer_id = self.producer_id;
        self.producer_id = host.next_producer_id()?;
        self.epoch = 0;
        self.last_epoch = -1;
        Ok(())
    }

    fn record(&self) -> TxnRecord {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in &self.partitions {
            by_topic.entry(topic.clone()).or_default().push(*partition);
        }
        TxnRecord {
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: by_topic.into_iter().collect(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
            previous_producer_id: self.last_producer_id,
            next_producer_id: -1,
            client_version: self.client_version,
        }
    }

    fn from_record(record: TxnRecord) -> Self {
        Self {
            producer_id: record.producer_id,
            last_producer_id: record.previous_producer_id,
            epoch: record.producer_epoch,
            last_epoch: -1,
            timeout_ms: record.timeout_ms,
            state: record.state,
            partitions: record
                .partitions
                .into_iter()
                .flat_map(|(topic, ids)| ids.into_iter().map(move |p| (topic.clone(), p)))
                .collect(),
            start_ms: record.start_ms,
            last_update_ms: record.last_update_ms,
            client_version: record.client_version,
        }
    }
}

/// What DescribeTransactions reports of one transactional id.
#[derive(Debug, Clone)]
pub struct TxnDescription {
    /// The state.
    pub state: TxnState,
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub producer_epoch: i16,
    /// The transaction timeout.
    pub timeout_ms: i32,
    /// When the transaction started (-1 if none).
    pub start_ms: i64,
    /// The partitions in it.
    pub partitions: Vec<(String, i32)>,
}

type SharedTxn = Arc<Mutex<TxnMetadata>>;

/// Every transactional id on this node.
#[derive(Debug)]
pub struct TransactionCoordinator {
    topic: StateTopic,
    txns: Mutex<HashMap<String, SharedTxn>>,
    /// Producer id → transactional id (Produce verification).
    by_producer: Mutex<HashMap<i64, String>>,
    /// `transaction.max.timeout.ms`.
    max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    id_expiration_ms: i64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl TransactionCoordinator {
    /// A coordinator with no transactional ids yet.
    pub fn new(max_timeout_ms: i32, id_expiration_ms: i64) -> Self {
        Self {
            topic: StateTopic::new(TXN_TOPIC),
            txns: Mutex::new(HashMap::new()),
            by_producer: Mutex::new(HashMap::new()),
            max_timeout_ms,
            id_expiration_ms,
        }
    }

    /// Whether the `__transaction_state` partitions are attached.
    pub fn is_attached(&self) -> bool {
        self.topic.is_attached()
    }

    /// Records whether this node leads `partition` of the state topic
    /// (see [`coordinator::set_led`]).
    pub fn set_led(self: &Arc<Self>, partition: i32, led: bool) {
        coordinator::set_led(self, partition, led);
    }

    /// Takes the `__transaction_state` partition logs and loads them by
    /// replay on a thread of its own (a `fresh` topic is ready at once).
    /// Prepared transactions are completed by the next [`Self::tick`].
    pub fn attach(self: &Arc<Self>, logs: Vec<Arc<PartitionLog>>, fresh: bool) {
        let count = i32::try_from(logs.len()).unwrap_or(0);
        if !self.topic.attach(logs) {
            return;
        }
        if fresh {
            for p in 0..count {
                self.topic.mark_loaded(p);
            }
            return;
        }
        let coordinator = self.clone();
        let spawned = std::thread::Builder::new()
            .name("txn-loader".into())
            .spawn(move || coordinator.load_all());
        if let Err(e) = spawned {
            error!(cause = %e, "cannot start the transaction loader; loading inline");
            self.load_all();
        }
    }

    fn load_all(&self) {
        let started = std::time::Instant::now();
        let mut loaded = 0;
        for partition in 0..self.topic.partition_count() {
            match self.load_partition(partition) {
                Ok(n) => loaded += n,
                Err(e) => {
                    error!(topic = TXN_TOPIC, partition, cause = %e, "cannot load transaction state; its ids stay unavailable");
                    continue;
                }
            }
            self.topic.mark_loaded(partition);
        }
        info!(
            transactional_ids = loaded,
            ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "loaded transaction state from {TXN_TOPIC}"
        );
    }

    /// Replays one partition's transactional ids; how many it holds.
    fn load_partition(&self, partition: i32) -> std::io::Result<usize> {
        let mut loaded = 0;
        {
            let mut found: HashMap<String, Option<TxnRecord>> = HashMap::new();
            let replayed = self.topic.replay(partition, |replayed| {
                let Replayed::Record { key, value, .. } = replayed else {
                    return;
                };
                match records::decode(key, value) {
                    Ok(Some((id, record))) => {
                        found.insert(id, record);
                    }
                    Ok(None) => {}
                    Err(e) => warn!(topic = TXN_TOPIC, partition, cause = %e, "skipping a record that does not decode"),
                }
            });
            replayed?;
            let mut txns = lock(&self.txns);
            let mut by_producer = lock(&self.by_producer);
            for (id, record) in found {
                match record {
                    Some(record) => {
                        by_producer.insert(record.producer_id, id.clone());
                        txns.insert(id, Arc::new(Mutex::new(TxnMetadata::from_record(record))));
                        loaded += 1;
                    }
                    None => {
                        txns.remove(&id);
                    }
                }
            }
            drop((txns, by_producer));
        }
        Ok(loaded)
    }

    /// Whether `transactional_id`'s partition is loaded.
    ///
    /// # Errors
    /// COORDINATOR_NOT_AVAILABLE or COORDINATOR_LOAD_IN_PROGRESS.
    pub fn ready(&self, transactional_id: &str) -> Result<(), ResponseError> {
        self.topic.ready(transactional_id).map(|_| ())
    }

    fn get(&self, id: &str) -> Option<SharedTxn> {
        lock(&self.txns).get(id).cloned()
    }

    /// Stores `meta`'s state as `id`'s record.
    fn store(&self, id: &str, meta: &TxnMetadata) -> Result<(), ResponseError> {
        let partition = self.topic.ready(id)?;
        let record = (records::key(id), Some(records::value(&meta.record())));
        self.topic
            .append(partition, &[record], None, now_ms())
            .map(|_| ())
            .map_err(|e| {
                error!(transactional_id = id, cause = %e, "cannot store transaction state");
                ResponseError::NotCoordinator
            })
    }

    /// Handles InitProducerId with a transactional id: a new producer id,
    /// or the next epoch of the existing one (fencing older producers);
    /// an ongoing transaction is aborted first and the client told to
    /// retry (CONCURRENT_TRANSACTIONS), as Kafka does.
    ///
    /// # Errors
    /// INVALID_TRANSACTION_TIMEOUT, CONCURRENT_TRANSACTIONS,
    /// PRODUCER_FENCED (KIP-360 with an unknown producer), or the
    /// coordinator's state errors.
    pub fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        host: &dyn TxnHost,
    ) -> Result<(i64, i16), ResponseError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(ResponseError::InvalidRequest);
        }
        if timeout_ms <= 0 || timeout_ms > self.max_timeout_ms {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.ready(id)?;
        // An id expired while this waited for its lock is looked up anew.
        for _ in 0..3 {
            let shared = self.get_or_create(id, timeout_ms, host)?;
            let mut meta = lock(&shared);
            if meta.state == TxnState::Dead {
                continue;
            }
            return self.init_locked(id, &mut meta, timeout_ms, expected, host);
        }
        Err(ResponseError::ConcurrentTransactions)
    }

    /// The id's entry, created (Empty, a new producer id) if unknown.
    fn get_or_create(
        &self,
        id: &str,
        timeout_ms: i32,
        host: &dyn TxnHost,
    ) -> Result<SharedTxn, ResponseError> {
        Ok(match self.get(id) {
            Some(shared) => shared,
            None => {
                let created = Arc::new(Mutex::new(TxnMetadata {
                    producer_id: host.next_producer_id()?,
                    last_producer_id: -1,
                    epoch: -1,
                    last_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    start_ms: -1,
                    last_update_ms: now_ms(),
                    client_version: 0,
                }));
                lock(&self.txns)
                    .entry(id.to_owned())
                    .or_insert(created)
                    .clone()
            }
        })
    }

    /// InitProducerId on the locked entry of `id`.
    fn init_locked(
        &self,
        id: &str,
        meta: &mut TxnMetadata,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        host: &dyn TxnHost,
    ) -> Result<(i64, i16), ResponseError> {
        if let Some((pid, epoch)) = expected {
            let valid = meta.epoch < 0
                || pid == meta.producer_id
                || (pid == meta.last_producer_id && epoch >= MAX_EPOCH);
            if !valid {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing => {
                // Fence the current producer: bump the epoch and abort its
                // transaction with it; the client retries.
                self.fence_and_abort(id, meta, host)?;
                Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Empty
            | TxnState::CompleteCommit
            | TxnState::CompleteAbort
            | TxnState::Dead => {
                let mut next = meta.clone();
                let retry = expected.is_some_and(|(pid, epoch)| {
                    (pid == meta.producer_id && epoch == meta.last_epoch && meta.last_epoch >= 0)
                        || (pid == meta.last_producer_id && pid != meta.producer_id)
                });
                if retry {
                    // A retry of a bump that succeeded: the same answer.
                } else if meta.epoch >= MAX_EPOCH {
                    next.move_to_new_producer_id(host)?;
                } else {
                    if let Some((_, epoch)) = expected {
                        if meta.epoch >= 0 && epoch != meta.epoch {
                            return Err(ResponseError::ProducerFenced);
                        }
                    }
                    next.last_epoch = if expected.is_some() { meta.epoch } else { -1 };
                    next.epoch = meta.epoch + 1;
                }
                next.timeout_ms = timeout_ms;
                next.state = TxnState::Empty;
                next.partitions.clear();
                next.start_ms = -1;
                next.last_update_ms = now_ms();
                self.store(id, &next)?;
                lock(&self.by_producer).insert(next.producer_id, id.to_owned());
                let answer = (next.producer_id, next.epoch);
                *meta = next;
                info!(
                    transactional_id = id,
                    producer_id = answer.0,
                    epoch = answer.1,
                    "initialized transactional producer"
                );
                Ok(answer)
            }
        }
    }

    /// A transactional id a client names in a transactional request.
    ///
    /// # Errors
    /// INVALID_REQUEST for an empty id, INVALID_PRODUCER_ID_MAPPING for an
    /// unknown one, or the coordinator's state errors.
    fn known(&self, id: &str) -> Result<SharedTxn, ResponseError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(ResponseError::InvalidRequest);
        }
        self.ready(id)?;
        self.get(id).ok_or(ResponseError::InvalidProducerIdMapping)
    }

    /// Checks a transactional request's producer against the id's state.
    fn check_producer(
        meta: &TxnMetadata,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(), ResponseError> {
        // Expired while the caller waited for its lock: the id is gone.
        if meta.state == TxnState::Dead {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if meta.epoch != epoch {
            return Err(ResponseError::ProducerFenced);
        }
        Ok(())
    }

    /// Handles AddPartitionsToTxn (and AddOffsetsToTxn, whose partition is
    /// the group's `__consumer_offsets` partition): transaction protocol
    /// version 1.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS,
    /// or the coordinator's state errors.
    pub fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<(), ResponseError> {
        let shared = self.known(id)?;
        let mut meta = lock(&shared);
        Self::check_producer(&meta, producer_id, epoch)?;
        self.add_locked(id, &mut meta, partitions, 0)
    }

    /// Adds `partitions` to the locked id's transaction, starting one if
    /// none is ongoing, for a client of transaction protocol `version`.
    fn add_locked(
        &self,
        id: &str,
        meta: &mut TxnMetadata,
        partitions: &[(String, i32)],
        version: i16,
    ) -> Result<(), ResponseError> {
        match meta.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            TxnState::Ongoing
                if partitions
                    .iter()
                    .all(|p| meta.partitions.contains(&(p.0.clone(), p.1))) =>
            {
                return Ok(())
            }
            _ => {}
        }
        let mut next = meta.clone();
        let now = now_ms();
        if next.state != TxnState::Ongoing {
            next.partitions.clear();
            next.start_ms = now;
        }
        next.state = TxnState::Ongoing;
        next.partitions
            .extend(partitions.iter().map(|(t, p)| (t.clone(), *p)));
        next.last_update_ms = now;
        next.client_version = version;
        self.store(id, &next)?;
        *meta = next;
        Ok(())
    }

    /// Runs `append` under the transaction's lock if `producer_id` at
    /// `epoch` has an ongoing transaction holding `topic`-`partition`, so
    /// its end cannot slip in between (Kafka's produce-time transaction
    /// verification, KIP-890 part 1). With `add` (a transaction protocol
    /// version 2 write: Produce v12+, TxnOffsetCommit v5+) a partition not
    /// yet in the transaction is added first, starting the transaction if
    /// none is ongoing (KIP-890 part 2).
    ///
    /// # Errors
    /// INVALID_TXN_STATE if the partition is not in an ongoing transaction
    /// of that producer (and `add` is off), INVALID_PRODUCER_EPOCH for
    /// another epoch, CONCURRENT_TRANSACTIONS while the previous
    /// transaction completes, NOT_ENOUGH_REPLICAS (retriable) while the
    /// state loads.
    pub fn append_verified<T>(
        &self,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        add: bool,
        append: impl FnOnce() -> T,
    ) -> Result<T, ResponseError> {
        let id = lock(&self.by_producer).get(&producer_id).cloned();
        let Some(id) = id else {
            // Until every partition of the state topic is loaded the
            // producer may be one not replayed yet: a retriable answer
            // (Kafka's coordinator answers the leader's verification with
            // COORDINATOR_LOAD_IN_PROGRESS, which Produce turns into
            // NOT_ENOUGH_REPLICAS), not an abort of its transaction.
            return Err(if self.topic.is_fully_loaded() {
                ResponseError::InvalidTxnState
            } else {
                ResponseError::NotEnoughReplicas
            });
        };
        if self.ready(&id).is_err() {
            return Err(ResponseError::NotEnoughReplicas);
        }
        let shared = self.get(&id).ok_or(ResponseError::InvalidTxnState)?;
        let mut meta = lock(&shared);
        if meta.producer_id != producer_id || meta.state == TxnState::Dead {
            return Err(ResponseError::InvalidTxnState);
        }
        if meta.epoch != epoch {
            return Err(ResponseError::InvalidProducerEpoch);
        }
        let key = (topic.to_owned(), partition);
        if meta.state != TxnState::Ongoing || !meta.partitions.contains(&key) {
            if !add {
                return Err(ResponseError::InvalidTxnState);
            }
            self.add_locked(&id, &mut meta, &[key], 2)?;
        }
        Ok(append())
    }

    /// Handles EndTxn: Prepare record, markers on every partition,
    /// Complete record; the answer is the producer id and epoch for the
    /// next transaction. With `bump` (transaction protocol version 2,
    /// EndTxn v5+) the epoch is bumped by every end, an abort with nothing
    /// in the transaction still ends one, and a retry (the previous epoch,
    /// or the previous producer id after a rotation) answers as the first
    /// did. A retried version 1 end answers as the first did too; the other
    /// end of a completed transaction is INVALID_TXN_STATE.
    ///
    /// # Errors
    /// INVALID_PRODUCER_ID_MAPPING, PRODUCER_FENCED, INVALID_TXN_STATE,
    /// CONCURRENT_TRANSACTIONS, or the coordinator's state errors.
    pub fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        bump: bool,
        host: &dyn TxnHost,
    ) -> Result<(i64, i16), ResponseError> {
        let shared = self.known(id)?;
        let mut meta = lock(&shared);
        if bump && Self::is_retry_of_bumped_end(&meta, producer_id, epoch) {
            return match (meta.state, commit) {
                (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                    Ok((meta.producer_id, meta.epoch))
                }
                (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                    Err(ResponseError::ConcurrentTransactions)
                }
                _ => Err(ResponseError::InvalidTxnState),
            };
        }
        Self::check_producer(&meta, producer_id, epoch)?;
        match (meta.state, commit) {
            (TxnState::Ongoing, _) => {}
            // Version 2: the client cannot know whether its writes reached
            // the partitions, so an abort of nothing ends a transaction.
            (TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort, false)
                if bump => {}
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) if !bump => {
                return Ok((producer_id, epoch))
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            _ => return Err(ResponseError::InvalidTxnState),
        }
        let mut next = meta.clone();
        if bump {
            next.last_epoch = meta.epoch;
            next.epoch = meta.epoch.saturating_add(1);
            next.client_version = 2;
        }
        self.prepare(id, &mut next, commit)?;
        *meta = next;
        self.complete(id, &mut meta, host)?;
        Ok((meta.producer_id, meta.epoch))
    }

    /// Whether a version 2 EndTxn of `producer_id` at `epoch` repeats the
    /// end that moved the id to its current epoch or producer id.
    fn is_retry_of_bumped_end(meta: &TxnMetadata, producer_id: i64, epoch: i16) -> bool {
        let ended = matches!(
            meta.state,
            TxnState::PrepareCommit
                | TxnState::PrepareAbort
                | TxnState::CompleteCommit
                | TxnState::CompleteAbort
        );
        let previous_epoch =
            producer_id == meta.producer_id && epoch >= 0 && epoch + 1 == meta.epoch;
        let previous_id = producer_id == meta.last_producer_id
            && producer_id != meta.producer_id
            && meta.epoch == 0;
        ended && meta.client_version >= 2 && (previous_epoch || previous_id)
    }

    /// Aborts the locked ongoing transaction with the producer's epoch
    /// bumped, fencing it. The bump is kept only once the Prepare record
    /// holding it is stored (else nothing changed, and a retry bumps anew).
    fn fence_and_abort(
        &self,
        id: &str,
        meta: &mut TxnMetadata,
        host: &dyn TxnHost,
    ) -> Result<(), ResponseError> {
        let mut next = meta.clone();
        if next.epoch < MAX_EPOCH {
            next.epoch += 1;
        }
        next.last_epoch = -1;
        self.prepare(id, &mut next, false)?;
        *meta = next;
        self.complete(id, meta, host)
    }

    /// Stores the Prepare record of the locked transaction; `meta` becomes
    /// it only once stored.
    fn prepare(&self, id: &str, meta: &mut TxnMetadata, commit: bool) -> Result<(), ResponseError> {
        let mut prepared = meta.clone();
        prepared.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        prepared.last_update_ms = now_ms();
        self.store(id, &prepared)?;
        *meta = prepared;
        Ok(())
    }

    /// Completes the locked prepared transaction: markers (with its epoch)
    /// on every partition, then the Complete record. A version 2 client
    /// whose epoch is exhausted moves to a new producer id at epoch 0.
    fn complete(
        &self,
        id: &str,
        meta: &mut TxnMetadata,
        host: &dyn TxnHost,
    ) -> Result<(), ResponseError> {
        let commit = meta.state == TxnState::PrepareCommit;
        let partitions: Vec<(String, i32)> = meta.partitions.iter().cloned().collect();
        let written = host.write_markers(&partitions, meta.producer_id, meta.epoch, commit);
        for ((topic, partition), result) in partitions.iter().zip(written) {
            if let Err(e) = result {
                // A deleted partition needs no marker; any other failure
                // leaves the transaction prepared, for the next tick (a
                // marker written twice is harmless: the second ends no
                // transaction).
                if e != ResponseError::UnknownTopicOrPartition {
                    warn!(transactional_id = id, topic, partition, cause = ?e, "cannot write a transaction marker; retrying later");
                    return Err(ResponseError::ConcurrentTransactions);
                }
            }
        }
        let mut complete = meta.clone();
        complete.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        complete.partitions.clear();
        complete.last_update_ms = now_ms();
        if complete.client_version >= 2 && complete.epoch >= MAX_EPOCH {
            complete.move_to_new_producer_id(host)?;
        }
        self.store(id, &complete)?;
        if complete.producer_id != meta.producer_id {
            info!(
                transactional_id = id,
                producer_id = complete.producer_id,
                "epoch exhausted; moved to a new producer id"
            );
            lock(&self.by_producer).insert(complete.producer_id, id.to_owned());
        }
        *meta = complete;
        Ok(())
    }

    /// Background work at `now_ms`: completes transactions left prepared
    /// (by a crash), aborts those past their timeout with the epoch bumped,
    /// and forgets ids idle past `transactional.id.expiration.ms`.
    pub fn tick(&self, host: &dyn TxnHost) {
        let now = now_ms();
        let all: Vec<(String, SharedTxn)> = lock(&self.txns)
            .iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        for (id, shared) in all {
            if self.ready(&id).is_err() {
                continue;
            }
            let mut meta = lock(&shared);
            match meta.state {
                TxnState::PrepareCommit | TxnState::PrepareAbort => {
                    if let Err(e) = self.complete(&id, &mut meta, host) {
                        warn!(transactional_id = %id, cause = ?e, "cannot complete a prepared transaction");
                    }
                }
                TxnState::Ongoing
                    if now.saturating_sub(meta.start_ms) > i64::from(meta.timeout_ms) =>
                {
                    info!(transactional_id = %id, producer_id = meta.producer_id, "aborting a timed-out transaction");
                    if let Err(e) = self.fence_and_abort(&id, &mut meta, host) {
                        warn!(transactional_id = %id, cause = ?e, "cannot abort a timed-out transaction");
                    }
                }
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
                    if now.saturating_sub(meta.last_update_ms) > self.id_expiration_ms =>
                {
                    self.expire(&id, &mut meta);
                }
                _ => {}
            }
        }
    }

    /// Writes the tombstone of an idle transactional id and forgets it.
    fn expire(&self, id: &str, meta: &mut TxnMetadata) {
        let Ok(partition) = self.topic.ready(id) else {
            return;
        };
        if let Err(e) = self
            .topic
            .append(partition, &[(records::key(id), None)], None, now_ms())
        {
            warn!(transactional_id = id, cause = %e, "cannot expire a transactional id");
            return;
        }
        meta.state = TxnState::Dead;
        lock(&self.txns).remove(id);
        lock(&self.by_producer).remove(&meta.producer_id);
        info!(transactional_id = id, "expired transactional id");
    }

    /// DescribeTransactions of one id.
    ///
    /// # Errors
    /// TRANSACTIONAL_ID_NOT_FOUND, or the coordinator's state errors.
    pub fn describe(&self, id: &str) -> Result<TxnDescription, ResponseError> {
        self.ready(id)?;
        let shared = self.get(id).ok_or(ResponseError::TransactionalIdNotFound)?;
        let meta = lock(&shared);
        Ok(TxnDescription {
            state: meta.state,
            producer_id: meta.producer_id,
            producer_epoch: meta.epoch,
            timeout_ms: meta.timeout_ms,
            start_ms: meta.start_ms,
            partitions: meta.partitions.iter().cloned().collect(),
        })
    }

    /// ListTransactions: (id, producer id, state) of the ids matching the
    /// filters (empty filters match all; `min_duration_ms` < 0 too) that
    /// this node coordinates. In a cluster the ids of state partitions led
    /// elsewhere are left out, as Kafka's coordinator lists only the
    /// partitions it owns (the admin client merges every broker's list):
    /// this node's copy of them is what it replayed when it last loaded
    /// them, stale once another node leads.
    ///
    /// # Errors
    /// COORDINATOR_LOAD_IN_PROGRESS while any partition it leads loads.
    pub fn list(
        &self,
        states: &[TxnState],
        producer_ids: &[i64],
        min_duration_ms: i64,
    ) -> Result<Vec<(String, i64, TxnState)>, ResponseError> {
        if (0..self.topic.partition_count())
            .any(|p| self.topic.is_led(p) && !self.topic.is_loaded(p))
        {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        let now = now_ms();
        let all: Vec<(String, SharedTxn)> = lock(&self.txns)
            .iter()
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        let mut listed: Vec<(String, i64, TxnState)> = all
            .into_iter()
            .filter_map(|(id, shared)| {
                let meta = lock(&shared);
                let state_ok = states.is_empty() || states.contains(&meta.state);
                let producer_ok =
                    producer_ids.is_empty() || producer_ids.contains(&meta.producer_id);
                let duration_ok = min_duration_ms < 0
                    || (meta.state == TxnState::Ongoing
                        && now.saturating_sub(meta.start_ms) >= min_duration_ms);
                let here = self.topic.ready(&id).is_ok();
                (here && state_ok && producer_ok && duration_ok && meta.state != TxnState::Dead)
                    .then(|| (id, meta.producer_id, meta.state))
            })
            .collect();
        listed.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(listed)
    }
}

impl Replayable for TransactionCoordinator {
    fn state_topic(&self) -> &StateTopic {
        &self.topic
    }

    fn replay_partition(&self, partition: i32) -> std::io::Result<u64> {
        self.load_partition(partition)
            .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::LogConfig;

    /// (topic, partition, producer id, epoch, commit) per marker.
    type Marker = (String, i32, i64, i16, bool);

    /// Records every marker, refuses none; producer ids from 100 up.
    struct Markers(Mutex<Vec<Marker>>, std::sync::atomic::AtomicI64);

    impl Default for Markers {
        fn default() -> Self {
            Self(
                Mutex::new(Vec::new()),
                std::sync::atomic::AtomicI64::new(100),
            )
        }
    }

    impl TxnHost for Markers {
        fn write_markers(
            &self,
            partitions: &[(String, i32)],
            producer_id: i64,
            epoch: i16,
            commit: bool,
        ) -> Vec<Result<(), ResponseError>> {
            let mut written = lock(&self.0);
            for (topic, partition) in partitions {
                written.push((topic.clone(), *partition, producer_id, epoch, commit));
            }
            vec![Ok(()); partitions.len()]
        }

        fn next_producer_id(&self) -> Result<i64, ResponseError> {
            Ok(self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
        }
    }

    fn coordinator(dir: &std::path::Path, db: &sled::Db) -> Arc<TransactionCoordinator> {
        let coordinator = unloaded_coordinator(dir, db);
        coordinator.load_all();
        coordinator
    }

    /// A coordinator whose state topic is attached but not replayed yet.
    fn unloaded_coordinator(dir: &std::path::Path, db: &sled::Db) -> Arc<TransactionCoordinator> {
        let config = LogConfig {
            compact: true,
            ..LogConfig::default()
        };
        let logs = (0..2)
            .map(|p| {
                let path = dir.join(format!("{TXN_TOPIC}-{p}"));
                Arc::new(PartitionLog::open(&path, TXN_TOPIC, p, db, config.clone(), 0).unwrap())
            })
            .collect();
        let coordinator = Arc::new(TransactionCoordinator::new(900_000, 604_800_000));
        assert!(coordinator.topic.attach(logs));
        coordinator
    }

    /// A transactional write of a producer the coordinator has not
    /// replayed yet is retriable while the state loads (after a restart
    /// it is an ongoing transaction's), INVALID_TXN_STATE once loaded.
    #[test]
    fn unknown_producers_wait_for_the_load() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("meta")).unwrap();
        let markers = Markers::default();
        let (pid, epoch) = {
            let txns = coordinator(dir.path(), &db);
            let (pid, epoch) = txns.init_producer_id("tx", 60_000, None, &markers).unwrap();
            txns.append_verified(pid, epoch, "t", 0, true, || ())
                .unwrap();
            (pid, epoch)
        };
        let txns = unloaded_coordinator(dir.path(), &db);
        assert_eq!(
            txns.append_verified(pid, epoch, "t", 1, true, || ()),
            Err(ResponseError::NotEnoughReplicas)
        );
        txns.load_all();
        txns.append_verified(pid, epoch, "t", 1, true, || ())
            .unwrap();
        assert_eq!(
            txns.append_verified(pid + 1, epoch, "t", 1, true, || ()),
            Err(ResponseError::InvalidTxnState)
        );
    }

    #[test]
    fn commit_abort_fencing_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("meta")).unwrap();
        let markers = Markers::default();
        {
            let txns = coordinator(dir.path(), &db);
            let (pid, epoch) = txns.init_producer_id("tx", 60_000, None, &markers).unwrap();
            assert_eq!((pid, epoch), (100, 0));
            let parts = [("t".to_owned(), 0), ("t".to_owned(), 1)];
            txns.add_partitions("tx", pid, epoch, &parts).unwrap();
            assert_eq!(
                txns.append_verified(pid, epoch, "t", 1, false, || 7)
                    .unwrap(),
                7
            );
            assert_eq!(
                txns.append_verified(pid, epoch, "t", 2, false, || 7)
                    .unwrap_err(),
                ResponseError::InvalidTxnState
            );
            txns.end_txn("tx", pid, epoch, true, false, &markers)
                .unwrap();
            assert_eq!(lock(&markers.0).len(), 2);
            // A retry of the commit answers the same; an abort now is wrong.
            txns.end_txn("tx", pid, epoch, true, false, &markers)
                .unwrap();
            assert_eq!(
                txns.end_txn("tx", pid, epoch, false, false, &markers),
                Err(ResponseError::InvalidTxnState)
            );
            txns.add_partitions("tx", pid, epoch, &parts[..1]).unwrap();
            // A second producer fences the first: its open transaction is
            // aborted with a bumped epoch, and it retries.
            assert_eq!(
                txns.init_producer_id("tx", 60_000, None, &markers),
                Err(ResponseError::ConcurrentTransactions)
            );
            assert_eq!(
                lock(&markers.0).last().unwrap(),
                &("t".into(), 0, pid, 1, false)
            );
            assert_eq!(
                txns.init_producer_id("tx", 60_000, None, &markers).unwrap(),
                (pid, 2)
            );
            assert_eq!(
                txns.add_partitions("tx", pid, 0, &parts),
                Err(ResponseError::ProducerFenced)
            );
            txns.add_partitions("tx", pid, 2, &parts).unwrap();
        }
        let txns = coordinator(dir.path(), &db);
        let described = txns.describe("tx").unwrap();
        assert_eq!(described.state, TxnState::Ongoing);
        assert_eq!((described.producer_id, described.producer_epoch), (100, 2));
        assert_eq!(described.partitions.len(), 2);
        assert_eq!(
            txns.list(&[TxnState::Ongoing], &[], -1).unwrap(),
            [("tx".to_owned(), 100, TxnState::Ongoing)]
        );
        assert_eq!(
            txns.describe("nope").unwrap_err(),
            ResponseError::TransactionalIdNotFound
        );
    }

    /// ListTransactions lists only the ids of the state partitions this
    /// node leads (a follower's copy is stale), and waits only for those
    /// to load.
    #[test]
    fn only_the_coordinated_ids_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("meta")).unwrap();
        let markers = Markers::default();
        let ids: Vec<String> = (0..8).map(|n| format!("tx-{n}")).collect();
        let in_partition = |p: i32| -> Vec<String> {
            ids.iter()
                .filter(|id| coordinator::partition_for(id, 2) == p)
                .cloned()
                .collect()
        };
        assert!(!in_partition(0).is_empty() && !in_partition(1).is_empty());
        let listed = |txns: &TransactionCoordinator| -> Vec<String> {
            txns.list(&[], &[], -1)
                .unwrap()
                .into_iter()
                .map(|(id, _, _)| id)
                .collect()
        };
        let txns = coordinator(dir.path(), &db);
        for id in &ids {
            txns.init_producer_id(id, 60_000, None, &markers).unwrap();
        }
        assert_eq!(listed(&txns), ids);
        // Partition 1 now led by another node: its ids are not this one's.
        assert!(!txns.topic.set_led(1, false));
        assert_eq!(listed(&txns), in_partition(0));
        // Led again but not reloaded yet: wait for it.
        assert!(txns.topic.set_led(1, true));
        assert_eq!(
            txns.list(&[], &[], -1),
            Err(ResponseError::CoordinatorLoadInProgress)
        );
        txns.topic.mark_loaded(1);
        assert_eq!(listed(&txns), ids);
        drop(txns);
        // A partition led elsewhere that is not loaded does not hold it up.
        let txns = unloaded_coordinator(dir.path(), &db);
        assert!(!txns.topic.set_led(0, false));
        txns.load_partition(1).unwrap();
        txns.topic.mark_loaded(1);
        assert_eq!(listed(&txns), in_partition(1));
    }

    #[test]
    fn version_2_bumps_the_epoch_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path().join("meta")).unwrap();
        let markers = Markers::default();
        let txns = coordinator(dir.path(), &db);
        let (pid, epoch) = txns.init_producer_id("tx", 60_000, None, &markers).unwrap();
        // A Produce v12 adds its partition implicitly.
        assert_eq!(
            txns.append_verified(pid, epoch, "t", 0, true, || 1)
                .unwrap(),
            1
        );
        assert_eq!(txns.describe("tx").unwrap().state, TxnState::Ongoing);
        let next = txns
            .end_txn("tx", pid, epoch, true, true, &markers)
            .unwrap();
        assert_eq!(next, (pid, epoch + 1));
        // The marker carries the new epoch.
        assert_eq!(
            lock(&markers.0).last().unwrap(),
            &("t".into(), 0, pid, epoch + 1, true)
        );
        // A retry with the old epoch answers the same; the other end of it
        // is INVALID_TXN_STATE; the old epoch cannot write.
        assert_eq!(
            txns.end_txn("tx", pid, epoch, true, true, &markers),
            Ok(next)
        );
        assert_eq!(
            txns.end_txn("tx", pid, epoch, false, true, &markers),
            Err(ResponseError::InvalidTxnState)
        );
        assert_eq!(
            txns.append_verified(pid, epoch, "t", 0, true, || ()),
            Err(ResponseError::InvalidProducerEpoch)
        );
        // An abort of nothing still ends a transaction and bumps.
        let aborted = txns
            .end_txn("tx", pid, next.1, false, true, &markers)
            .unwrap();
        assert_eq!(aborted, (pid, epoch + 2));
        // The state survives a reload, retries included.
        drop(txns);
        let txns = coordinator(dir.path(), &db);
        assert_eq!(
            txns.end_txn("tx", pid, next.1, false, true, &markers),
            Ok(aborted)
        );
        // An exhausted epoch moves the id to a new producer id.
        {
            let shared = txns.get("tx").unwrap();
            lock(&shared).epoch = MAX_EPOCH - 1;
        }
        txns.append_verified(pid, MAX_EPOCH - 1, "t", 0, true, || ())
            .unwrap();
        let rotated = txns
            .end_txn("tx", pid, MAX_EPOCH - 1, true, true, &markers)
            .unwrap();
        assert_ne!(rotated.0, pid);
        assert_eq!(rotated.1, 0);
        assert_eq!(
            txns.end_txn("tx", pid, MAX_EPOCH - 1, true, true, &markers),
            Ok(rotated)
        );
        txns.append_verified(rotated.0, 0, "t", 1, true, || ())
            .unwrap();
    }
}
