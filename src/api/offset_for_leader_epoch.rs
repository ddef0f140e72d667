//! OffsetForLeaderEpoch v2-v4 (Kafka 4.1's range): where a leader epoch
//! ends in the leader's log. Consumers ask it after a leader change to
//! check that their position is still on the log (KIP-320: a position
//! past the end of its epoch here was truncated away).
//!
//! - Per partition: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER
//!   away from the leader, FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH for
//!   a `current_leader_epoch` older / newer than the partition's (-1 skips
//!   the check), as Fetch.
//! - The current epoch ends at the log end; an older one where the next
//!   epoch in the log starts; one newer than the current is unknown:
//!   leader epoch -1 and end offset -1 with no error, as Kafka answers.
//! - Followers (`replica_id` >= 0) get the same answers; strom's own
//!   followers use Fetch's diverging epoch instead.

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::{check_leader_epoch, partition_lookup};
use crate::broker::Broker;
use crate::security::acl::Operation;
use crate::security::Session;

/// Answers an OffsetForLeaderEpoch request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|topic| {
            let log_of = partition_lookup(broker, session, Operation::Describe, &topic.topic);
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    let found = log_of(p.partition).and_then(|log| {
                        check_leader_epoch(broker, &log, p.current_leader_epoch)?;
                        let current = broker
                            .partition_state(&log.topic, log.partition)
                            .map_or(0, |s| s.leader_epoch);
                        Ok(log.offset_for_leader_epoch(current, p.leader_epoch))
                    });
                    match found {
                        Ok((epoch, end)) => answer.with_leader_epoch(epoch).with_end_offset(end),
                        Err(e) => answer
                            .with_error_code(e.code_i16())
                            .with_leader_epoch(-1)
                            .with_end_offset(-1),
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(topic.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
