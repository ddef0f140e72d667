//! Produce v3-v13 (v0-v2 are advertised for librdkafka < 2.11 but refused
//! by the codec with UNSUPPORTED_VERSION, as Kafka 4 does).
//!
//! - Each partition's data must be exactly one record batch, validated
//!   before it is stored, in Kafka's order: INVALID_RECORD for a magic
//!   other than 2, a base offset other than 0 or a truncated batch;
//!   MESSAGE_TOO_LARGE past `max.message.bytes`; CORRUPT_MESSAGE for a bad
//!   CRC or length; INVALID_RECORD for a bad record count, a producer id
//!   without a sequence, several batches or a control batch.
//! - Record rules for every record, compressed ones inflated as a stream,
//!   with `record_errors` naming each refused record (v8+):
//!   INVALID_TIMESTAMP for a CreateTime timestamp outside
//!   `message.timestamp.before.max.ms` / `message.timestamp.after.max.ms`
//!   (1 hour ahead by default), INVALID_RECORD for a record without a key
//!   on a compacted topic or records that do not fill the batch exactly.
//!   Compressed batches are checked and appended as blocking work (a
//!   small batch may inflate to gigabytes): the worker's other tasks move
//!   to another thread meanwhile.
//! - Transactional batches go only into an ongoing transaction that holds
//!   the partition (INVALID_TXN_STATE, TRANSACTION_ABORTABLE from v11, as
//!   Kafka); v12+ (transaction protocol version 2) adds the partition.
//! - Idempotent batches: a retry gets its original offset back;
//!   OUT_OF_ORDER_SEQUENCE_NUMBER for a gap or a new epoch not starting at
//!   0; INVALID_PRODUCER_EPOCH when fenced. A producer the partition has no
//!   state for may start at any sequence, as in Kafka.
//! - acks 0, 1 and -1 (one node: all replicas are this one); anything else is
//!   INVALID_REQUIRED_ACKS. acks=0 sends no response. With acks=-1, a topic
//!   whose `min.insync.replicas` exceeds the in-sync replicas (this node
//!   alone) gets NOT_ENOUGH_REPLICAS and nothing is stored, as in Kafka.
//! - Internal topics (`__consumer_offsets`) take no client records:
//!   INVALID_TOPIC_EXCEPTION, as Kafka.
//! - Unknown topics are auto-created when `auto.create.topics.enable` is on.
//! - v13 addresses topics by id. v10+ (KIP-951): a partition refused with
//!   NOT_LEADER_OR_FOLLOWER names its current leader and epoch, and the
//!   response lists that leader's endpoint.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{
    append_error, blocking, leader_endpoints, leader_hint, partition_log, resolve_topic, str_bytes,
    TopicRef,
};
use crate::broker::Broker;
use crate::cluster::is_internal_topic;
use crate::error::ApiError;
use crate::log::{
    is_compressed, now_ms, AppendError, AppendInfo, BatchHeader, NotReplicated, PartitionLog,
    RecordError,
};
use crate::security::acl::Operation;
use crate::security::Session;

/// Answers a Produce request; `None` for acks=0.
pub async fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    let acks_error = (!matches!(request.acks, -1..=1))
        .then(|| ApiError::new(ResponseError::InvalidRequiredAcks, "Invalid required acks"));
    let now = now_ms();
    // acks=all on a replicated partition: (topic, partition) indexes in the
    // response, the log, the offset its high watermark must reach and the
    // leader epoch it must reach it in.
    let mut replication_waits: Vec<(usize, usize, Arc<PartitionLog>, i64, i32)> = Vec::new(); // KIP-951 (v10+): refused partitions name their leader; the response
                                                                                              // lists those leaders' endpoints.
    let mut hinted: std::collections::BTreeSet<i32> = std::collections::BTreeSet::new();

    let mut responses: Vec<TopicProduceResponse> = request
        .topic_data
        .into_iter()
        .enumerate()
        .map(|(t, topic)| {
            let reference = TopicRef::new(version >= 13, &topic.name, topic.topic_id);
            let resolved = resolve_topic(broker, session, Operation::Write, &reference, true);
            let partitions = topic
                .partition_data
                .into_iter()
                .enumerate()
                .map(|(p, data)| {
                    let outcome = match (&acks_error, &resolved) {
                        (Some(e), _) | (None, Err(e)) => Err(Refusal::from(e.clone())),
                        (None, Ok(meta)) => append(
                            broker,
                            &meta.name,
                            data.index,
                            Request {
                                version,
                                acks: request.acks,
                                transactional_id: request
                                    .transactional_id
                                    .as_ref()
                                    .map(|id| id.0.as_str()),
                            },
                            data.records,
                            now,
                        ),
                    };
                    let response = PartitionProduceResponse::default().with_index(data.index);
                    match outcome {
                        Ok(Appended { info, log, end }) => {
                            if request.acks == -1 && broker.in_quorum() {
                                replication_waits.push((t, p, log, end, info.leader_epoch));
                            }
                            response
                                .with_base_offset(info.base_offset)
                                .with_log_append_time_ms(info.log_append_time)
                                .with_log_start_offset(info.log_start_offset)
                        }
                        Err(refusal) => {
                            let hint = match (&resolved, version >= 10) {
                                (Ok(meta), true) => {
                                    leader_hint(broker, &meta.name, data.index, &refusal.error)
                                }
                                _ => None,
                            };
                            let response = refusal.response(response, version);
                            match hint {
                                Some((leader, epoch)) => {
                                    hinted.insert(leader);
                                    response.with_current_leader(
                                        LeaderIdAndEpoch::default()
                                            .with_leader_id(BrokerId(leader))
                                            .with_leader_epoch(epoch),
                                    )
                                }
                                None => response,
                            }
                        }
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(reference.name_for_response())
                .with_topic_id(reference.id)
                .with_partition_responses(partitions)
        })
        .collect();
    let timeout = Duration::from_millis(u64::try_from(request.timeout_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + timeout;
    for (t, p, log, end, epoch) in replication_waits {
        let error = wait_for_replicas(broker, &log, end, epoch, deadline).await;
        if let Some(error) = error {
            let response = &mut responses[t].partition_responses[p];
            *response = Refusal::from(error).response(response.clone(), version);
        }
    }
    let endpoints = leader_endpoints(broker, &session.listener, &hinted)
        .into_iter()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(str_bytes))
        })
        .collect();
    (request.acks != 0).then(|| {
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(endpoints)
    })
}

/// Waits (without blocking a thread) until `log`'s high watermark reaches
/// `end` in leader epoch `epoch`: every in-sync replica has the batch.
/// REQUEST_TIMED_OUT past `deadline`; NOT_LEADER_OR_FOLLOWER if the
/// leadership moved meanwhile (the batch may be truncated away);
/// NOT_ENOUGH_REPLICAS_AFTER_APPEND if the ISR shrank below
/// `min.insync.replicas` meanwhile (as Kafka).
async fn wait_for_replicas(
    broker: &Broker,
    log: &PartitionLog,
    end: i64,
    epoch: i32,
    deadline: tokio::time::Instant,
) -> Option<ApiError> {
    match log.wait_for_high_watermark(end, epoch, deadline).await {
        Ok(()) => {}
        Err(NotReplicated::TimedOut) => {
            return Some(ApiError::new(
                ResponseError::RequestTimedOut,
                "The in-sync replicas did not all acknowledge the records in time",
            ))
        }
        Err(NotReplicated::LeaderChanged) => {
            return Some(ApiError::new(
                ResponseError::NotLeaderOrFollower,
                "Leadership moved before the records were on every in-sync replica",
            ))
        }
    }
    let isr = in_sync_replicas(broker, &log.topic, log.partition);
    let min_insync = log.config().min_insync_replicas;
    (isr < min_insync).then(|| {
        ApiError::new(
            ResponseError::NotEnoughReplicasAfterAppend,
            format!(
                "The size of the current ISR : {isr} is insufficient to satisfy the min.isr \
                 requirement of {min_insync} for partition {}-{}",
                log.topic, log.partition
            ),
        )
    })
}

/// How many replicas of a partition are in sync (on one node: the leader).
fn in_sync_replicas(broker: &Broker, topic: &str, partition: i32) -> i64 {
    broker
        .partition_state(topic, partition)
        .map_or(1, |s| i64::try_from(s.isr.len()).unwrap_or(1))
}

/// Why a partition's data was not stored.
struct Refusal {
    error: ApiError,
    /// The refused records (record rule violations only).
    record_errors: Vec<RecordError>,
    /// The partition's log start offset, when Kafka reports it.
    log_start_offset: i64,
}

impl From<ApiError> for Refusal {
    fn from(error: ApiError) -> Self {
        Self {
            error,
            record_errors: Vec::new(),
            log_start_offset: -1,
        }
    }
}

impl Refusal {
    /// The partition's response carrying this refusal.
    fn response(
        self,
        response: PartitionProduceResponse,
        version: i16,
    ) -> PartitionProduceResponse {
        let response = response
            .with_error_code(self.error.code_i16())
            .with_base_offset(-1)
            .with_log_append_time_ms(-1)
            .with_log_start_offset(self.log_start_offset);
        if version < 8 {
            return response;
        }
        let record_errors = self
            .record_errors
            .into_iter()
            .map(|e| {
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(e.batch_index)
                    .with_batch_index_error_message(Some(str_bytes(e.message)))
            })
            .collect();
        response
            .with_error_message(self.error.message.map(str_bytes))
            .with_record_errors(record_errors)
    }
}

/// NOT_ENOUGH_REPLICAS when the partition's `min.insync.replicas` is more
/// than the replicas in sync (checked for acks=-1 only, as Kafka does).
fn check_in_sync_replicas(
    broker: &Broker,
    log: &PartitionLog,
    topic: &str,
    partition: i32,
) -> Result<(), Refusal> {
    let min_insync_replicas = log.config().min_insync_replicas;
    let in_sync = in_sync_replicas(broker, topic, partition);
    if in_sync >= min_insync_replicas {
        return Ok(());
    }
    Err(Refusal {
        error: ApiError::new(
            ResponseError::NotEnoughReplicas,
            format!(
                "The size of the current ISR : {in_sync} is insufficient to satisfy \
                 the min.isr requirement of {min_insync_replicas} for partition {topic}-{partition}"
            ),
        ),
        record_errors: Vec::new(),
        log_start_offset: log.offsets().log_start_offset,
    })
}

/// What the request says about each of its partitions' writes.
#[derive(Clone, Copy)]
struct Request<'a> {
    version: i16,
    acks: i16,
    transactional_id: Option<&'a str>,
}

fn append(
    broker: &Broker,
    topic: &str,
    partition: i32,
    request: Request<'_>,
    records: Option<Bytes>,
    now: i64,
) -> Result<Appended, Refusal> {
    let Request { version, acks, .. } = request;
    if is_internal_topic(topic) {
        return Err(Refusal::from(ApiError::new(
            ResponseError::InvalidTopicException,
            format!("Cannot append to internal topic {topic}"),
        )));
    }
    let log = partition_log(broker, topic, partition)?;
    if acks == -1 {
        check_in_sync_replicas(broker, &log, topic, partition)?;
    }
    let records = records.ok_or_else(|| {
        ApiError::new(
            ResponseError::InvalidRecord,
            "Produce request has no records",
        )
    })?;
    let last_offset_delta = BatchHeader::parse(&records).map_or(0, |h| h.last_offset_delta);
    let size = u64::try_from(records.len()).unwrap_or(u64::MAX);
    let bytes = records.to_vec();
    let compressed = is_compressed(&bytes);
    let log_for_write = log.clone();
    let write = move || {
        let log = log_for_write;
        if compressed {
            // Checking compressed records means inflating them, which a
            // small batch can make take seconds: off the async workers, so
            // other connections are served meanwhile.
            blocking(|| log.append(bytes, now))
        } else {
            log.append(bytes, now)
        }
    };
    // A transactional batch is appended only into an ongoing transaction
    // holding this partition, checked with its coordinator so that no data
    // can land after its marker (Kafka's produce-time verification). From
    // v12 (transaction protocol version 2) the write adds the partition.
    let transactional = BatchHeader::parse(&records)
        .ok()
        .filter(BatchHeader::is_transactional);
    let appended = match transactional {
        Some(h) => broker
            .append_in_transaction(
                request.transactional_id,
                h.producer_id,
                h.producer_epoch,
                &log,
                version >= 12,
                write,
            )
            .map_err(|e| {
                Refusal::from(match e {
                    // v11+ clients know TRANSACTION_ABORTABLE (Kafka's
                    // answer to a failed verification); older ones get
                    // INVALID_TXN_STATE.
                    ResponseError::InvalidTxnState => ApiError::new(
                        if version >= 11 {
                            ResponseError::TransactionAbortable
                        } else {
                            e
                        },
                        "Partition was not added to the transaction",
                    ),
                    // The previous transaction is still completing: a
                    // retriable error every client knows (as Kafka maps it).
                    ResponseError::ConcurrentTransactions => {
                        ApiError::code(ResponseError::NotEnoughReplicas)
                    }
                    e => ApiError::code(e),
                })
            })?,
        None => write(),
    };
    let info = appended.map_err(|e| match e {
        // As Kafka's RecordValidationException: the records and the log start.
        AppendError::Records { ref errors, .. } => Refusal {
            record_errors: errors.clone(),
            log_start_offset: log.offsets().log_start_offset,
            error: append_error(e),
        },
        e => Refusal::from(append_error(e)),
    })?;
    let messages = u64::try_from(i64::from(last_offset_delta) + 1).unwrap_or(0);
    broker.metrics().record_produce(topic, messages, size);
    // The offset after the batch: what the high watermark must reach.
    let end = info.base_offset + i64::from(last_offset_delta) + 1;
    Ok(Appended { info, log, end })
}

/// A stored batch: where, and the offset after it.
struct Appended {
    info: AppendInfo,
    log: Arc<PartitionLog>,
    end: i64,
}
