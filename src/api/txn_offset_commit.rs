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
//! - The producer's transaction must be ongoing and hold the group's
//!   partition (AddOffsetsToTxn): INVALID_TXN_STATE otherwise,
//!   INVALID_PRODUCER_EPOCH for another epoch. v5+ (transaction protocol
//!   version 2) adds the partition to the transaction itself, starting
//!   one if none is ongoing.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};

use super::offset_commit::{check_offsets, partition_error, PartitionOffset};
use crate::broker::Broker;
use crate::group::OFFSETS_TOPIC;
use crate::security::Session;

/// Answers a TxnOffsetCommit request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let (accepted, refusals) = check_offsets(
        broker,
        session,
        request.topics.iter().map(|t| {
            let partitions = t.partitions.iter().map(|p| PartitionOffset {
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref(),
            });
            (t.name.0.as_str(), partitions.collect())
        }),
    );
    let groups = super::group_coordinator(broker);
    let producer = (request.producer_id.0, request.producer_epoch);
    // Only into an ongoing transaction holding the group's partition
    // (AddOffsetsToTxn first; v5+, transaction protocol version 2, adds it
    // here), checked with the transaction's coordinator so that the commit
    // cannot land after the transaction's marker.
    let log = groups
        .partition_for(&request.group_id.0)
        .and_then(|partition| broker.logs.get(OFFSETS_TOPIC, partition));
    let outcome = match log {
        None => Err(ResponseError::CoordinatorNotAvailable),
        Some(log) => broker
            .append_in_transaction(
                Some(&request.transactional_id.0),
                producer.0,
                producer.1,
                &log,
                version >= 5,
                || {
                    groups.commit_transactional(
                        &request.group_id.0,
                        &request.member_id,
                        request.group_instance_id.as_deref(),
                        request.generation_id,
                        producer,
                        accepted,
                    )
                },
            )
            .and_then(|committed| committed),
    };
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
                    let error = partition_error(&outcome, refusal);
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
