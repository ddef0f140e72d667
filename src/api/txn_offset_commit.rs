//! TxnOffsetCommit v0-v5: offsets committed inside a transaction. They are
//! appended to the group's `__consumer_offsets` partition as a batch of
//! the producer's transaction and stay invisible (OffsetFetch answers the
//! previous offset, or UNSTABLE_OFFSET_COMMIT with `require_stable`) until
//! the commit marker; an abort drops them.
//!
//! - v3+ (KIP-447) may carry the consumer's generation, member id and
//!   instance id: checked like OffsetCommit's (ILLEGAL_GENERATION,
//!   UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID).
//! - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; metadata over
//!   4096 bytes: OFFSET_METADATA_TOO_LARGE.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use crate::broker::Broker;
use crate::group::CommittedOffset;
use crate::log::now_ms;

/// Kafka's default `offset.metadata.max.bytes`.
const MAX_METADATA_BYTES: usize = 4096;

/// Answers a TxnOffsetCommit request.
pub fn handle(broker: &Broker, request: TxnOffsetCommitRequest) -> TxnOffsetCommitResponse {
    let now = now_ms();
    let mut accepted = Vec::new();
    let refusals: Vec<Vec<Option<ResponseError>>> = request
        .topics
        .iter()
        .map(|topic| {
            let meta = broker.topics.get(&topic.name.0);
            topic
                .partitions
                .iter()
                .map(|p| {
                    let known = meta
                        .as_ref()
                        .is_some_and(|m| (0..m.partition_count()).contains(&p.partition_index));
                    let metadata = p
                        .committed_metadata
                        .as_ref()
                        .map(|m| m.to_string())
                        .unwrap_or_default();
                    if !known {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else if metadata.len() > MAX_METADATA_BYTES {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    } else {
                        accepted.push((
                            topic.name.0.to_string(),
                            p.partition_index,
                            CommittedOffset {
                                offset: p.committed_offset,
                                leader_epoch: p.committed_leader_epoch,
                                metadata,
                                commit_timestamp: now,
                            },
                        ));
                        None
                    }
                })
                .collect()
        })
        .collect();
    let outcome = super::group_coordinator(broker).commit_transactional(
        &request.group_id.0,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id,
        (request.producer_id.0, request.producer_epoch),
        accepted,
    );
    let topics = request
        .topics
        .into_iter()
        .zip(refusals)
        .map(|(topic, refused)| {
            let partitions = topic
                .partitions
                .into_iter()
                .zip(refused)
                .map(|(p, refusal)| {
                    let error = match (&outcome, refusal) {
                        (Err(e), _) => Some(*e),
                        (Ok(()), refusal) => refusal,
                    };
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
