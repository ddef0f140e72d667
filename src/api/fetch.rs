//! Fetch v4-v18: whole record batches straight from the segment files.
//!
//! - Records are not read here: each partition's records field holds a
//!   `protocol::splice_marker` and the response lists the file regions, which
//!   the server sends from the page cache with `sendfile`.
//! - Long poll: when less than `min_bytes` is ready, waits up to
//!   `max_wait_ms`, woken by appends to any requested partition (no sleep loops).
//! - `max_bytes` (capped by the broker's `fetch.max.bytes`, 55 MiB by
//!   default) and `partition_max_bytes` are soft for the first non-empty
//!   partition (it always gets one whole batch, so a consumer can progress),
//!   hard for the rest.
//! - A fetch at an offset inside a batch returns that whole batch; an
//!   offset outside [log start, log end] is OFFSET_OUT_OF_RANGE.
//! - Empty results carry empty record bytes, never null (librdkafka needs it).
//! - v13+ addresses topics by id (UNKNOWN_TOPIC_ID if unknown).
//! - Fetch sessions (KIP-227): none are created; every response has
//!   session id 0, which tells clients to send full fetches. A request naming
//!   a session gets FETCH_SESSION_ID_NOT_FOUND and the client starts over.
//! - read_committed reads up to the last stable offset and returns the
//!   aborted transactions overlapping the returned batches, by first
//!   offset (null for read_uncommitted, as Kafka); markers are returned
//!   with the data, so a consumer moves past aborted data and markers.
//! - In a cluster: only the leader serves a partition
//!   (NOT_LEADER_OR_FOLLOWER elsewhere, with KIP-951's current leader from
//!   v12 and its endpoint from v16); `current_leader_epoch` is checked
//!   (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH); a follower's fetch
//!   (`replica_id`) reads to the log end, moves the high watermark, and gets
//!   a diverging epoch instead of records where its log diverged.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchPartition;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId};
use tokio::sync::futures::Notified;

use super::{
    check_leader_epoch, leader_endpoints, leader_hint, partition_log, read_error, resolve_topic,
    TopicRef,
};
use crate::broker::Broker;
use crate::error::ApiError;
use crate::log::{FileRegion, PartitionLog};
use crate::protocol::splice_marker;
use crate::security::acl::Operation;
use crate::security::Session;

const READ_COMMITTED: i8 = 1;

/// One requested partition, resolved once per request.
struct Wanted {
    request: FetchPartition,
    log: Result<Arc<PartitionLog>, ApiError>,
    /// For a follower whose log diverges from this leader's: the largest
    /// epoch both may share and where it ends here (its truncation point).
    diverging: Option<(i32, i64)>,
    /// KIP-951: the current leader and epoch of a partition refused with
    /// NOT_LEADER_OR_FOLLOWER or FENCED_LEADER_EPOCH.
    leader: Option<(i32, i32)>,
}

/// Where a follower's log diverges from this leader's (Kafka's Fetch v12
/// `DivergingEpoch`, KIP-595, the replica fetcher's truncation since
/// KIP-101): the follower's last batch has epoch `last_fetched_epoch`; if
/// this log ends that epoch before the follower's `fetch_offset`, or has
/// no such epoch, the follower holds batches this log does not, and gets
/// the largest epoch not above its own and that epoch's end here instead
/// of records. `None` when it does not diverge or sent no epoch.
fn diverging(log: &PartitionLog, request: &FetchPartition) -> Option<(i32, i64)> {
    if request.last_fetched_epoch < 0 {
        return None;
    }
    let (epoch, end) = log.end_offset_for_epoch(request.last_fetched_epoch);
    if epoch < 0 {
        // No epoch that old here: everything the follower has may differ.
        return Some((-1, log.offsets().log_start_offset));
    }
    (epoch < request.last_fetched_epoch || end < request.fetch_offset).then_some((epoch, end))
}

/// KIP-951: current leaders of refused partitions (v12+) and their
/// endpoints (v16+).
fn with_leader_hints(
    broker: &Broker,
    listener: &str,
    version: i16,
    mut response: FetchResponse,
    topics: &[(FetchableTopicResponse, Vec<Wanted>)],
) -> FetchResponse {
    if version < 12 {
        return response;
    }
    let mut hinted = std::collections::BTreeSet::new();
    for (answer, (_, wanted)) in response.responses.iter_mut().zip(topics) {
        for (partition, w) in answer.partitions.iter_mut().zip(wanted) {
            if let Some((leader, epoch)) = w.leader {
                hinted.insert(leader);
                partition.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
            }
        }
    }
    if version >= 16 {
        response.node_endpoints = leader_endpoints(broker, listener, &hinted)
            .into_iter()
            .map(|b| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(b.node_id))
                    .with_host(super::str_bytes(b.host))
                    .with_port(b.port)
                    .with_rack(b.rack.map(super::str_bytes))
            })
            .collect();
    }
    response
}

/// Answers a Fetch request, waiting for data as the request allows: the
/// response and the file regions its records markers stand for.
pub async fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: FetchRequest,
) -> (FetchResponse, Vec<FileRegion>) {
    if request.session_id != 0 {
        let response =
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code());
        return (response, Vec::new());
    }
    // A follower's fetch (Kafka's replica fetcher): read up to the log
    // end, and its offset tells the leader how far the follower is.
    let replica = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let replica = (replica >= 0).then_some(replica);
    let by_id = version >= 13;
    let topics: Vec<(FetchableTopicResponse, Vec<Wanted>)> = request
        .topics
        .into_iter()
        .map(|topic| {
            let reference = TopicRef::new(by_id, &topic.topic, topic.topic_id);
            let meta = resolve_topic(broker, session, Operation::Read, &reference, false);
            let skeleton = FetchableTopicResponse::default()
                .with_topic(reference.name_for_response())
                .with_topic_id(topic.topic_id);
            let wanted = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let log = meta
                        .clone()
                        .and_then(|m| partition_log(broker, &m.name, p.partition));
                    let diverging = match (&log, replica) {
                        (Ok(log), Some(_)) => diverging(log, &p),
                        _ => None,
                    };
                    let log = log.and_then(|log| {
                        match replica {
                            // A diverging follower's fetch offset says
                            // nothing of what it holds in common with this
                            // log: it does not count for the high watermark.
                            Some(id) if diverging.is_none() => broker
                                .follower_fetch(&log, id, p.fetch_offset, p.current_leader_epoch)
                                .map_err(ApiError::code),
                            _ => check_leader_epoch(broker, &log, p.current_leader_epoch),
                        }
                        .map(|()| log)
                    });
                    let leader = match (&log, &meta) {
                        (Err(e), Ok(m)) => leader_hint(broker, &m.name, p.partition, e),
                        _ => None,
                    };
                    Wanted {
                        log,
                        request: p,
                        diverging,
                        leader,
                    }
                })
                .collect();
            (skeleton, wanted)
        })
        .collect();
    let read_committed = request.isolation_level == READ_COMMITTED;
    // As Kafka: the broker's `fetch.max.bytes` caps what a request may ask.
    let broker_max = usize::try_from(broker.config().get_i64("fetch.max.bytes")).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(broker_max);
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    let logs: Vec<Arc<PartitionLog>> = topics
        .iter()
        .flat_map(|(_, wanted)| wanted.iter().filter_map(|w| w.log.as_ref().ok().cloned()))
        .collect();
    loop {
        // Arm the wake-ups before reading, so an append that lands between
        // the read and the wait still wakes this fetch.
        let mut wakeups: Vec<Pin<Box<Notified<'_>>>> = logs
            .iter()
            .map(|log| {
                let mut notified = Box::pin(log.appended().notified());
                notified.as_mut().enable();
                notified
            })
            .collect();
        let read = read_all(&topics, max_bytes, read_committed, replica.is_some());
        let expired = tokio::time::Instant::now() >= deadline;
        if read.bytes >= min_bytes.max(1)
            || read.any_error
            || read.diverging
            || expired
            || wakeups.is_empty()
            || min_bytes == 0
        {
            if replica.is_none() {
                for ((skeleton, _), bytes) in topics.iter().zip(&read.topic_bytes) {
                    if *bytes == 0 {
                        continue;
                    }
                    if skeleton.topic.is_empty() {
                        if let Some(meta) = broker.topics.get_by_id(&skeleton.topic_id) {
                            broker.metrics().record_fetch(&meta.name, *bytes);
                        }
                    } else {
                        broker.metrics().record_fetch(&skeleton.topic, *bytes);
                    }
                }
            }
            let response = FetchResponse::default().with_responses(read.responses);
            return (
                with_leader_hints(broker, &session.listener, version, response, &topics),
                read.regions,
            );
        }
        tokio::select! {
            _ = futures::future::select_all(wakeups.iter_mut()) => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// One pass over the requested partitions.
struct ReadPass {
    responses: Vec<FetchableTopicResponse>,
    /// The file regions behind the records markers, in marker order.
    regions: Vec<FileRegion>,
    /// Record bytes returned.
    bytes: usize,
    /// Record bytes returned per requested topic, in request order.
    topic_bytes: Vec<u64>,
    /// Whether any partition failed.
    any_error: bool,
    /// Whether a follower was told where its log diverges (answered at
    /// once, as an error is).
    diverging: bool,
}

/// Locates every requested partition's batches once.
fn read_all(
    topics: &[(FetchableTopicResponse, Vec<Wanted>)],
    max_bytes: usize,
    read_committed: bool,
    replica: bool,
) -> ReadPass {
    let mut used = 0usize;
    let mut any_error = false;
    let mut diverged = false;
    let mut regions = Vec::new();
    let mut topic_bytes = vec![0u64; topics.len()];
    let responses = topics
        .iter()
        .zip(topic_bytes.iter_mut())
        .map(|((skeleton, wanted), topic_used)| {
            let partitions = wanted
                .iter()
                .map(|w| {
                    let response = PartitionData::default()
                        .with_partition_index(w.request.partition)
                        .with_preferred_read_replica(BrokerId(-1))
                        .with_records(Some(Bytes::new()));
                    let log = match &w.log {
                        Ok(log) => log,
                        Err(e) => {
                            any_error = true;
                            return error_data(response, e);
                        }
                    };
                    if let Some((epoch, end_offset)) = w.diverging {
                        diverged = true;
                        let offsets = log.offsets();
                        return response
                            .with_high_watermark(offsets.high_watermark)
                            .with_last_stable_offset(offsets.last_stable_offset)
                            .with_log_start_offset(offsets.log_start_offset)
                            .with_diverging_epoch(
                                EpochEndOffset::default()
                                    .with_epoch(epoch)
                                    .with_end_offset(end_offset),
                            );
                    }
                    let limit = usize::try_from(w.request.partition_max_bytes)
                        .unwrap_or(0)
                        .min(max_bytes.saturating_sub(used));
                    let read = if replica {
                        let end = log.offsets().log_end_offset;
                        log.read(w.request.fetch_offset, limit.max(1), Some(end))
                    } else if read_committed {
                        log.read_committed(w.request.fetch_offset, limit.max(1))
                    } else {
                        log.read(w.request.fetch_offset, limit.max(1), None)
                    };
                    match read {
                        Err(e) => {
                            any_error = true;
                            let offsets = log.offsets();
                            error_data(response, &read_error(e))
                                .with_high_watermark(offsets.high_watermark)
                                .with_last_stable_offset(offsets.last_stable_offset)
                                .with_log_start_offset(offsets.log_start_offset)
                        }
                        Ok(read) => {
                            let aborted = read_committed.then(|| {
                                read.aborted
                                    .iter()
                                    .map(|t| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(t.producer_id))
                                            .with_first_offset(t.first_offset)
                                    })
                                    .collect()
                            });
                            let response = response
                                .with_high_watermark(read.offsets.high_watermark)
                                .with_last_stable_offset(read.offsets.last_stable_offset)
                                .with_log_start_offset(read.offsets.log_start_offset)
                                .with_aborted_transactions(aborted);
                            // Only the first non-empty partition may exceed the limits.
                            let region = read.records.filter(|r| used == 0 || r.len <= limit);
                            let Some(region) = region else {
                                return response;
                            };
                            used += region.len;
                            *topic_used += u64::try_from(region.len).unwrap_or(0);
                            match records_field(region, &mut regions) {
                                Ok(records) => response.with_records(Some(records)),
                                Err(e) => {
                                    any_error = true;
                                    error_data(response, &e)
                                }
                            }
                        }
                    }
                })
                .collect();
            skeleton.clone().with_partitions(partitions)
        })
        .collect();
    ReadPass {
        responses,
        regions,
        bytes: used,
        topic_bytes,
        any_error,
        diverging: diverged,
    }
}

/// The records field for `region`: a splice marker (the region joins
/// `regions`), or, past the markers a response can hold, the bytes themselves.
fn records_field(region: FileRegion, regions: &mut Vec<FileRegion>) -> Result<Bytes, ApiError> {
    if let Some(marker) = splice_marker(regions.len()) {
        regions.push(region);
        return Ok(marker);
    }
    region
        .read()
        .map_err(|e| ApiError::new(ResponseError::KafkaStorageError, e.to_string()))
}

fn error_data(response: PartitionData, e: &ApiError) -> PartitionData {
    response
        .with_error_code(e.code_i16())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
}
