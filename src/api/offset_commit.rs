//! OffsetCommit v2-v9: committed offsets (with leader epoch and metadata)
//! per group and partition, appended to `__consumer_offsets` as one batch
//! of OffsetCommit records before the response (Kafka's schemas; a commit
//! is acknowledged only once it is in the log).
//!
//! - Members commit within their generation (ILLEGAL_GENERATION,
//!   UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, REBALANCE_IN_PROGRESS between
//!   join and sync); generation -1 without a member id commits for an empty
//!   group (manual assignment, admin tools). A generation of a group that
//!   does not exist is GROUP_ID_NOT_FOUND from v9, ILLEGAL_GENERATION before.
//! - Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION; metadata over
//!   4096 bytes (`offset.metadata.max.bytes`): OFFSET_METADATA_TOO_LARGE.
//! - `retention_time_ms` (v2-v4) is ignored, as in Kafka 4:
//!   `offsets.retention.minutes` applies.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::broker::Broker;
use crate::group::CommittedOffset;
use crate::log::now_ms;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Kafka's default `offset.metadata.max.bytes`.
const MAX_METADATA_BYTES: usize = 4096;

/// Each partition's own refusal, by topic, in request order.
pub(super) type Refusals = Vec<Vec<Option<ResponseError>>>;

/// One partition's offset as a commit request carries it.
pub(super) struct PartitionOffset<'a> {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<&'a str>,
}

/// The offsets of a commit (OffsetCommit, TxnOffsetCommit) that may be
/// stored, and each partition's own refusal by topic, in request order:
/// UNKNOWN_TOPIC_OR_PARTITION, or OFFSET_METADATA_TOO_LARGE past
/// `offset.metadata.max.bytes`.
pub(super) fn check_offsets<'a>(
    broker: &Broker,
    session: &Session,
    topics: impl Iterator<Item = (&'a str, Vec<PartitionOffset<'a>>)>,
) -> (Vec<(String, i32, CommittedOffset)>, Refusals) {
    let now = now_ms();
    let mut accepted = Vec::new();
    let refusals = topics
        .map(|(name, partitions)| {
            let meta = broker.topics.get(name);
            let may_read = broker.authorize(session, Operation::Read, ResourceType::Topic, name);
            partitions
                .into_iter()
                .map(|p| {
                    let known = meta
                        .as_ref()
                        .is_some_and(|m| (0..m.partition_count()).contains(&p.partition));
                    let metadata = p.metadata.unwrap_or_default();
                    if !may_read {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else if !known {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else if metadata.len() > MAX_METADATA_BYTES {
                        Some(ResponseError::OffsetMetadataTooLarge)
                    } else {
                        accepted.push((
                            name.to_owned(),
                            p.partition,
                            CommittedOffset {
                                offset: p.offset,
                                leader_epoch: p.leader_epoch,
                                metadata: metadata.to_owned(),
                                commit_timestamp: now,
                            },
                        ));
                        None
                    }
                })
                .collect()
        })
        .collect();
    (accepted, refusals)
}

/// A partition's answer: the whole commit's error (a failed member check
/// refuses every partition), else its own refusal.
pub(super) fn partition_error(
    outcome: &Result<(), ResponseError>,
    refusal: Option<ResponseError>,
) -> Option<ResponseError> {
    match outcome {
        Err(e) => Some(*e),
        Ok(()) => refusal,
    }
}

/// Answers an OffsetCommit request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.as_str();
    // A generation of a group that does not exist: GROUP_ID_NOT_FOUND from
    // v9 on, ILLEGAL_GENERATION before (as Kafka's group coordinator).
    let unknown_group = if version >= 9 {
        ResponseError::GroupIdNotFound
    } else {
        ResponseError::IllegalGeneration
    };
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
    // The accepted offsets are one batch in __consumer_offsets: all or none.
    let outcome = super::group_coordinator(broker).commit(
        group,
        &request.member_id,
        request.group_instance_id.as_deref(),
        request.generation_id_or_member_epoch,
        unknown_group,
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
                    let error = partition_error(&outcome, refusal);
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(error.map_or(0, |e| e.code()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
