//! ListOffsets v1-v10: earliest (-2), latest (-1), max timestamp (-3, v7+),
//! earliest local (-4, v8+: the log start, as nothing is tiered), and by
//! timestamp: the first record whose timestamp is at least the one asked
//! for. No match answers offset -1 and timestamp -1 with no error, as Kafka does.
//!
//! read_committed (v2+) reads "latest" as the last stable offset. Tiered
//! storage markers (-5, -6) find nothing: there is no remote tier.
//!
//! v4+ answers the leader epoch of the offset (the partition's current
//! one for "latest", else the epoch of the batch holding it) and checks
//! `current_leader_epoch` as Fetch does (FENCED_LEADER_EPOCH,
//! UNKNOWN_LEADER_EPOCH).

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use super::{check_leader_epoch, partition_lookup};
use crate::broker::Broker;
use crate::log::PartitionLog;
use crate::security::acl::Operation;
use crate::security::Session;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// Answers a ListOffsets request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let log_of = partition_lookup(broker, session, Operation::Describe, &topic.name);
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    let log = log_of(p.partition_index).and_then(|log| {
                        check_leader_epoch(broker, &log, p.current_leader_epoch)?;
                        Ok(log)
                    });
                    match log {
                        Err(e) => response
                            .with_error_code(e.code_i16())
                            .with_offset(-1)
                            .with_timestamp(-1),
                        Ok(log) => {
                            let (offset, timestamp) =
                                lookup(&log, p.timestamp, request.isolation_level == 1);
                            let response = response.with_offset(offset).with_timestamp(timestamp);
                            if version >= 4 {
                                response.with_leader_epoch(epoch_of(
                                    broker,
                                    &log,
                                    p.timestamp,
                                    offset,
                                ))
                            } else {
                                response
                            }
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// The leader epoch answered with `offset` (Kafka's): the partition's
/// current one for "latest" (and for an offset past every batch), the
/// epoch of the batch holding it otherwise, -1 for no offset.
fn epoch_of(broker: &Broker, log: &PartitionLog, timestamp: i64, offset: i64) -> i32 {
    if offset < 0 {
        return -1;
    }
    let current = broker
        .partition_state(&log.topic, log.partition)
        .map_or(0, |s| s.leader_epoch);
    if timestamp == LATEST || offset >= log.offsets().log_end_offset {
        return current;
    }
    log.epoch_for_offset(offset).unwrap_or(current)
}

/// (offset, timestamp) for one partition and one ListOffsets timestamp.
fn lookup(log: &PartitionLog, timestamp: i64, read_committed: bool) -> (i64, i64) {
    let offsets = log.offsets();
    match timestamp {
        LATEST if read_committed => (offsets.last_stable_offset, -1),
        LATEST => (offsets.high_watermark, -1),
        EARLIEST | EARLIEST_LOCAL => (offsets.log_start_offset, -1),
        MAX_TIMESTAMP => log.max_timestamp_offset().unwrap_or((-1, -1)),
        t if t >= 0 => log.offset_for_timestamp(t).unwrap_or((-1, -1)),
        _ => (-1, -1),
    }
}
