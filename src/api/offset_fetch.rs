//! OffsetFetch v1-v9: committed offsets of one group (v1-v7) or several
//! (v8+). A null topic list (v2+) means every partition the group has
//! committed. A partition with no commit answers offset -1, no error.
//! While the group's `__consumer_offsets` partition loads, the group's
//! error is COORDINATOR_LOAD_IN_PROGRESS (per partition in v0-v1).
//! `require_stable` (v7+): a partition whose transactional offset commit
//! waits for its marker answers UNSTABLE_OFFSET_COMMIT; without it the
//! last committed offset is returned.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::group::CommittedOffset;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// (topic, [(partition, committed offset if any)]) for one group.
type Fetched = Vec<(String, Vec<(i32, Option<CommittedOffset>)>)>;

/// Answers an OffsetFetch request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    // DESCRIBE on the group, then on each topic: named topics the session
    // may not describe answer TOPIC_AUTHORIZATION_FAILED, and a fetch of
    // every topic leaves them out.
    let topic_denied =
        |topic: &str| !broker.authorize(session, Operation::Describe, ResourceType::Topic, topic);
    let fetch = |group: &str, wanted: Option<Vec<(TopicName, Vec<i32>)>>| {
        if !broker.authorize(session, Operation::Describe, ResourceType::Group, group) {
            return Err(ResponseError::GroupAuthorizationFailed);
        }
        let all = wanted.is_none();
        let mut fetched = fetch(broker, group, wanted)?;
        if all {
            fetched.retain(|(topic, _)| !topic_denied(topic));
        }
        Ok(fetched)
    };
    // `require_stable`: a partition whose offset waits for a transaction's
    // marker answers UNSTABLE_OFFSET_COMMIT (the client retries).
    let require_stable = version >= 7 && request.require_stable;
    let unstable = |group: &str, topic: &str, partition: i32| {
        require_stable && broker.groups.has_pending_offset(group, topic, partition)
    };
    if version >= 8 {
        let groups = request
            .groups
            .into_iter()
            .map(|group| {
                let wanted = group.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| (t.name, t.partition_indexes))
                        .collect()
                });
                let fetched = match fetch(&group.group_id.0, wanted) {
                    Ok(fetched) => fetched,
                    Err(e) => {
                        return OffsetFetchResponseGroup::default()
                            .with_group_id(group.group_id)
                            .with_error_code(e.code())
                    }
                };
                let topics = fetched
                    .into_iter()
                    .map(|(name, partitions)| {
                        let partitions = partitions
                            .into_iter()
                            .map(|(index, committed)| {
                                if topic_denied(&name) {
                                    return OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(-1)
                                        .with_error_code(
                                            ResponseError::TopicAuthorizationFailed.code(),
                                        );
                                }
                                if unstable(&group.group_id.0, &name, index) {
                                    return OffsetFetchResponsePartitions::default()
                                        .with_partition_index(index)
                                        .with_committed_offset(-1)
                                        .with_error_code(
                                            ResponseError::UnstableOffsetCommit.code(),
                                        );
                                }
                                let (offset, epoch, metadata) = fields(committed);
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(str_bytes(metadata)))
                            })
                            .collect();
                        OffsetFetchResponseTopics::default()
                            .with_name(topic_name(&name))
                            .with_partitions(partitions)
                    })
                    .collect();
                OffsetFetchResponseGroup::default()
                    .with_group_id(group.group_id)
                    .with_topics(topics)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let wanted = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect()
    });
    let (fetched, error) = match fetch(&request.group_id.0, wanted.clone()) {
        Ok(fetched) => (fetched, None),
        // v0-v1 carry errors per partition only; v2+ at the top as well.
        Err(e) => (
            wanted
                .unwrap_or_default()
                .into_iter()
                .map(|(name, partitions)| {
                    (
                        name.0.to_string(),
                        partitions.into_iter().map(|p| (p, None)).collect(),
                    )
                })
                .collect(),
            Some(e),
        ),
    };
    let topics = fetched
        .into_iter()
        .map(|(name, partitions)| {
            let partitions = partitions
                .into_iter()
                .map(|(index, committed)| {
                    let (offset, epoch, metadata) = fields(committed);
                    let partition_error = if error.is_none() && topic_denied(&name) {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else if unstable(&request.group_id.0, &name, index) {
                        Some(ResponseError::UnstableOffsetCommit)
                    } else {
                        error
                    };
                    let offset = if partition_error.is_some() {
                        -1
                    } else {
                        offset
                    };
                    let partition = OffsetFetchResponsePartition::default()
                        .with_partition_index(index)
                        .with_committed_offset(offset)
                        .with_metadata(Some(str_bytes(metadata)))
                        .with_error_code(partition_error.map_or(0, |e| e.code()));
                    if version >= 5 {
                        partition.with_committed_leader_epoch(epoch)
                    } else {
                        partition
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&name))
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        response.with_error_code(error.map_or(0, |e| e.code()))
    } else {
        response
    }
}

/// Looks up the wanted partitions (or all committed ones).
///
/// # Errors
/// The group's coordinator partition is still loading.
fn fetch(
    broker: &Broker,
    group: &str,
    wanted: Option<Vec<(TopicName, Vec<i32>)>>,
) -> Result<Fetched, ResponseError> {
    let groups = &broker.groups;
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(name, partitions)| {
                let name = name.0.to_string();
                let found = partitions
                    .into_iter()
                    .map(|p| Ok((p, groups.committed(group, &name, p)?)))
                    .collect::<Result<_, ResponseError>>()?;
                Ok((name, found))
            })
            .collect(),
        None => {
            let mut by_topic: Fetched = Vec::new();
            for ((topic, partition), committed) in groups.group_offsets(group)? {
                match by_topic.last_mut() {
                    Some((t, list)) if *t == topic => list.push((partition, Some(committed))),
                    _ => by_topic.push((topic, vec![(partition, Some(committed))])),
                }
            }
            Ok(by_topic)
        }
    }
}

/// (offset, leader epoch, metadata) as the wire carries them; -1 if none.
fn fields(committed: Option<CommittedOffset>) -> (i64, i32, String) {
    committed.map_or((-1, -1, String::new()), |c| {
        (c.offset, c.leader_epoch, c.metadata)
    })
}
