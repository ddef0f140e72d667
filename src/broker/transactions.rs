//! The broker's part in transactions when its partitions, its groups and
//! the transaction coordinators are spread over a cluster.
//!
//! - Markers: the coordinator of a transaction writes its markers into
//!   the partitions' logs on their leaders: here directly, elsewhere with
//!   WriteTxnMarkers (one request per leader, all at once), and a marker
//!   counts as written once it is on every in-sync replica (Kafka appends
//!   markers with acks=all), so a new leader never lacks one its
//!   coordinator already completed.
//! - Verification: a transactional write (Produce, TxnOffsetCommit) is
//!   checked against its transactional id's coordinator. Here, it runs
//!   under the transaction's lock; elsewhere, the leader asks it with
//!   AddPartitionsToTxn (the broker form: `verify_only`, or, for
//!   transaction protocol version 2, adding the partition) and appends
//!   under a verification guard that the transaction's marker drops
//!   (`log::PartitionLog::append_in_transaction`).
//!
//! Both wait on the network from synchronous code through `wait_for`
//! (the worker's other connections move to another thread meanwhile).

use std::collections::BTreeMap;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, ProducerId, TopicName, TransactionalId, WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;

use super::{wait_for, Broker};
use crate::coordinator::partition_for;
use crate::group::OFFSETS_TOPIC;
use crate::log::{self, AppendError, NotReplicated, PartitionLog, SequenceError};
use crate::txn::{TxnHost, TXN_TOPIC};

/// How long a marker may take to reach every in-sync replica, and a peer
/// to answer a marker or verification request.
const PEER_TIMEOUT: Duration = Duration::from_secs(5);
/// The WriteTxnMarkers version sent to other brokers.
const MARKERS_VERSION: i16 = 1;
/// The AddPartitionsToTxn version sent to coordinators (the broker form).
const VERIFY_VERSION: i16 = 5;

impl TxnHost for Broker {
    fn write_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Vec<Result<(), ResponseError>> {
        let mut results = vec![Ok(()); partitions.len()];
        let mut remote: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (i, (topic, partition)) in partitions.iter().enumerate() {
            match self.leader_of(topic, *partition) {
                Some(leader) if self.in_quorum() && leader != self.node_id() => {
                    remote.entry(leader).or_default().push(i);
                }
                _ => results[i] = self.write_marker(topic, *partition, producer_id, epoch, commit),
            }
        }
        if remote.is_empty() {
            return results;
        }
        let sends = remote.into_iter().map(|(leader, indexes)| {
            let wanted: Vec<&(String, i32)> = indexes.iter().map(|&i| &partitions[i]).collect();
            let request = markers_request(&wanted, producer_id, epoch, commit);
            async move {
                let answer = match self.broker_address(leader) {
                    None => Err(ResponseError::NotLeaderOrFollower),
                    Some(address) => self
                        .peers
                        .call(&address, MARKERS_VERSION, &request, PEER_TIMEOUT * 2)
                        .await
                        .map_err(|e| {
                            tracing::debug!(leader, cause = %e, "cannot send transaction markers");
                            ResponseError::NotLeaderOrFollower
                        }),
                };
                let outcomes: Vec<Result<(), ResponseError>> = wanted
                    .iter()
                    .map(|(topic, partition)| {
                        let response = answer.as_ref().map_err(|e| *e)?;
                        let code = response
                            .markers
                            .iter()
                            .flat_map(|m| &m.topics)
                            .filter(|t| t.name.0.as_str() == topic.as_str())
                            .flat_map(|t| &t.partitions)
                            .find(|p| p.partition_index == *partition)
                            .map_or(ResponseError::UnknownServerError.code(), |p| p.error_code);
                        match ResponseError::try_from_code(code) {
                            None => Ok(()),
                            Some(e) => Err(e),
                        }
                    })
                    .collect();
                (indexes, outcomes)
            }
        });
        for (indexes, outcomes) in wait_for(futures::future::join_all(sends)) {
            for (i, outcome) in indexes.into_iter().zip(outcomes) {
                results[i] = outcome;
            }
        }
        results
    }

    fn next_producer_id(&self) -> Result<i64, ResponseError> {
        Broker::next_producer_id(self).map_err(|e| {
            tracing::error!(cause = %e, "cannot allocate a producer id");
            ResponseError::UnknownServerError
        })
    }
}

fn markers_request(
    partitions: &[&(String, i32)],
    producer_id: i64,
    epoch: i16,
    commit: bool,
) -> WriteTxnMarkersRequest {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    let topics = by_topic
        .into_iter()
        .map(|(topic, partitions)| {
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
                .with_partition_indexes(partitions)
        })
        .collect();
    WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_transaction_result(commit)
        .with_topics(topics)
        .with_coordinator_epoch(0)])
}

impl Broker {
    /// Appends a marker of `producer_id` at `epoch` to `topic`-`partition`,
    /// which this node leads, and waits until it is on every in-sync
    /// replica (at once on one node).
    ///
    /// # Errors
    /// NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION,
    /// INVALID_PRODUCER_EPOCH, COORDINATOR_LOAD_IN_PROGRESS (the group
    /// state the marker completes is not loaded yet), KAFKA_STORAGE_ERROR,
    /// REQUEST_TIMED_OUT (not replicated in time; written again on the
    /// coordinator's retry, harmlessly), or NOT_LEADER_OR_FOLLOWER (the
    /// leadership moved before it was; written again on the new leader).
    pub fn write_marker(
        &self,
        topic: &str,
        partition: i32,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        // Group state must be loaded before a marker can complete its
        // pending offsets; until then the transaction stays prepared and the
        // coordinator retries.
        if topic == OFFSETS_TOPIC && !self.groups.is_loaded(partition) {
            return Err(ResponseError::CoordinatorLoadInProgress);
        }
        // A marker goes into the leader's log only (a follower's copy comes
        // from its leader).
        if self.in_quorum() && self.leader_of(topic, partition) != Some(self.node_id()) {
            return Err(ResponseError::NotLeaderOrFollower);
        }
        let log = self
            .logs
            .get(topic, partition)
            .ok_or(ResponseError::UnknownTopicOrPartition)?;
        let written = log
            .append_marker(producer_id, epoch, commit, 0, log::now_ms())
            .map_err(|e| match e {
                AppendError::Sequence(SequenceError::StaleEpoch { .. }) => {
                    ResponseError::InvalidProducerEpoch
                }
                AppendError::Deleted => ResponseError::UnknownTopicOrPartition,
                other => {
                    tracing::error!(topic, partition, cause = %other, "cannot write a transaction marker");
                    ResponseError::KafkaStorageError
                }
            })?;
        if topic == OFFSETS_TOPIC {
            self.groups
                .complete_transaction(partition, producer_id, commit);
        }
        if !self.in_quorum() {
            return Ok(()); // one node: the high watermark is the log end
        }
        let end = written.base_offset + 1;
        let deadline = tokio::time::Instant::now() + PEER_TIMEOUT;
        wait_for(log.wait_for_high_watermark(end, written.leader_epoch, deadline)).map_err(|e| {
            match e {
                NotReplicated::TimedOut => ResponseError::RequestTimedOut,
                NotReplicated::LeaderChanged => ResponseError::NotLeaderOrFollower,
            }
        })
    }

    /// Runs `append` (a transactional write of `producer_id` at `epoch` to
    /// `log`, this node leading it) only inside the producer's ongoing
    /// transaction holding that partition, checked with the coordinator
    /// of `transactional_id` (see the module doc). With `add` (transaction
    /// protocol version 2) a partition not yet in the transaction is added
    /// to it, starting one if none is ongoing.
    ///
    /// # Errors
    /// INVALID_TXN_STATE (not in the transaction, or it ended meanwhile),
    /// INVALID_PRODUCER_EPOCH, PRODUCER_FENCED, CONCURRENT_TRANSACTIONS, or
    /// NOT_ENOUGH_REPLICAS while the coordinator cannot answer (retriable).
    pub fn append_in_transaction<T>(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        epoch: i16,
        log: &PartitionLog,
        add: bool,
        append: impl FnOnce() -> T,
    ) -> Result<T, ResponseError> {
        let coordinator = transactional_id.and_then(|id| Some((id, self.coordinator_of(id)?)));
        let (id, node) = match coordinator {
            Some((id, node)) if self.in_quorum() && node != self.node_id() => (id, node),
            // Here (or one node; or a client too old to name its
            // transactional id): under the transaction's lock.
            _ => {
                return self.txns.append_verified(
                    producer_id,
                    epoch,
                    &log.topic,
                    log.partition,
                    add,
                    append,
                )
            }
        };
        let append = match log.append_in_transaction(producer_id, epoch, None, append) {
            Ok(appended) => return Ok(appended),
            Err(unrun) => unrun,
        };
        let guard = log.begin_verification(producer_id);
        let verified = self.verify_remotely(node, id, producer_id, epoch, log, add);
        if let Err(e) = verified {
            log.abandon_verification(guard);
            return Err(e);
        }
        log.append_in_transaction(producer_id, epoch, Some(guard), append)
            .map_err(|_| ResponseError::InvalidTxnState)
    }

    /// The node leading the `__transaction_state` partition of
    /// `transactional_id`.
    fn coordinator_of(&self, transactional_id: &str) -> Option<i32> {
        let count = self.topics.get(TXN_TOPIC)?.partition_count();
        self.leader_of(TXN_TOPIC, partition_for(transactional_id, count))
            .filter(|leader| *leader >= 0)
    }

    /// Asks the coordinator on `node` whether `log`'s partition is in the
    /// ongoing transaction of `producer_id` at `epoch` (with `add`: to add
    /// it).
    fn verify_remotely(
        &self,
        node: i32,
        transactional_id: &str,
        producer_id: i64,
        epoch: i16,
        log: &PartitionLog,
        add: bool,
    ) -> Result<(), ResponseError> {
        let address = self
            .broker_address(node)
            .ok_or(ResponseError::NotEnoughReplicas)?;
        let request = AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(
                    transactional_id.to_owned(),
                )))
                .with_producer_id(ProducerId(producer_id))
                .with_producer_epoch(epoch)
                .with_verify_only(!add)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(log.topic.clone())))
                    .with_partitions(vec![log.partition])]),
        ]);
        let response = wait_for(
            self.peers
                .call(&address, VERIFY_VERSION, &request, PEER_TIMEOUT),
        )
        .map_err(|e| {
            tracing::debug!(node, cause = %e, "cannot verify a transactional write");
            ResponseError::NotEnoughReplicas
        })?;
        if let Some(e) = ResponseError::try_from_code(response.error_code) {
            return Err(retriable_for_producer(e));
        }
        let code = response
            .results_by_transaction
            .iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .find(|p| p.partition_index == log.partition)
            .map_or(ResponseError::UnknownServerError.code(), |p| {
                p.partition_error_code
            });
        match ResponseError::try_from_code(code) {
            None => Ok(()),
            Some(e) => Err(retriable_for_producer(e)),
        }
    }

    /// The `host:port` of broker `node` (its client listener).
    fn broker_address(&self, node: i32) -> Option<String> {
        let quorum = self.membership.quorum()?;
        let image = quorum.image();
        let broker = image.brokers.get(&node)?;
        Some(format!("{}:{}", broker.host, broker.port))
    }
}

/// A coordinator's answer as the writer's client sees it: the errors that
/// mean "ask again later" become NOT_ENOUGH_REPLICAS, which every producer
/// retries (as Kafka's `AddPartitionsToTxnManager` maps them).
fn retriable_for_producer(e: ResponseError) -> ResponseError {
    match e {
        ResponseError::CoordinatorNotAvailable
        | ResponseError::NotCoordinator
        | ResponseError::CoordinatorLoadInProgress
        | ResponseError::ConcurrentTransactions
        | ResponseError::RequestTimedOut => ResponseError::NotEnoughReplicas,
        other => other,
    }
}
