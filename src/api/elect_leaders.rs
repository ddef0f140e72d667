//! ElectLeaders v0-v2 (`kafka-leader-election.sh`), as Kafka's controller
//! (`ReplicationControlManager.electLeaders`) answers it.
//!
//! PREFERRED (0; v0 knows no other) moves leadership to the first replica
//! of the assignment if it is live and in the ISR; UNCLEAN (1) gives a
//! partition without a leader a live ISR member, else the first live
//! replica outside the ISR (alone in the new ISR). Per partition:
//! ELECTION_NOT_NEEDED when it already has that leader (preferred) or any
//! leader (unclean), PREFERRED_LEADER_NOT_AVAILABLE /
//! ELIGIBLE_LEADERS_NOT_AVAILABLE when no replica qualifies,
//! UNKNOWN_TOPIC_OR_PARTITION ("No such topic as T", "No such partition
//! as T-P"); success has no message. Null `topic_partitions` means every
//! partition, and then partitions needing no election are left out (each
//! topic still gets its entry). Another election type is INVALID_REQUEST
//! for the whole request ("Unknown election type N").
//!
//! In a cluster each election is a `MetadataCommand::ElectLeader`, decided
//! on the image as it applies (the leader epoch is bumped). A single node
//! leads every partition, which is always its preferred leader: every
//! election is not needed.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::cluster::quorum::{elect, Election, MetadataCommand, Refusal};
use crate::error::ApiError;

/// Answers an ElectLeaders request.
pub fn handle(
    broker: &Broker,
    version: i16,
    request: &ElectLeadersRequest,
) -> ElectLeadersResponse {
    let election = match (version, request.election_type) {
        (0, _) | (_, 0) => Election::Preferred,
        (_, 1) => Election::Unclean,
        (_, other) => return invalid_type(request, other),
    };
    let (asked, all): (Vec<(TopicName, Vec<i32>)>, bool) = match &request.topic_partitions {
        Some(topics) => (
            topics
                .iter()
                .map(|t| (t.topic.clone(), t.partitions.clone()))
                .collect(),
            false,
        ),
        None => (
            broker
                .topics
                .all()
                .iter()
                .map(|meta| {
                    (
                        topic_name(&meta.name),
                        (0..meta.partition_count()).collect(),
                    )
                })
                .collect(),
            true,
        ),
    };
    let results = asked
        .into_iter()
        .map(|(topic, partitions)| {
            let partition_result = partitions
                .into_iter()
                .map(|partition| (partition, elect_one(broker, &topic.0, partition, election)))
                .filter(|(_, outcome)| {
                    !(all
                        && matches!(outcome, Err(e) if e.code == ResponseError::ElectionNotNeeded))
                })
                .map(|(partition, outcome)| {
                    let (code, message) = match outcome {
                        Ok(()) => (0, None),
                        Err(e) => (e.code.code(), e.message.map(str_bytes)),
                    };
                    PartitionResult::default()
                        .with_partition_id(partition)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(topic)
                .with_partition_result(partition_result)
        })
        .collect();
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Runs one partition's election.
fn elect_one(
    broker: &Broker,
    topic: &str,
    partition: i32,
    election: Election,
) -> Result<(), ApiError> {
    let meta = broker
        .topics
        .get(topic)
        .ok_or_else(|| unknown(format!("No such topic as {topic}")))?;
    let unknown_partition = || unknown(format!("No such partition as {topic}-{partition}"));
    let replicas = usize::try_from(partition)
        .ok()
        .and_then(|p| meta.partitions.get(p))
        .ok_or_else(unknown_partition)?;
    let state = broker
        .partition_state(topic, partition)
        .ok_or_else(unknown_partition)?;
    let refused = |why| match why {
        Refusal::ElectionNotNeeded => ApiError::new(
            ResponseError::ElectionNotNeeded,
            "Leader election not needed for topic partition.",
        ),
        Refusal::PreferredLeaderNotAvailable => ApiError::new(
            ResponseError::PreferredLeaderNotAvailable,
            "The preferred leader was not available.",
        ),
        Refusal::EligibleLeadersNotAvailable => ApiError::new(
            ResponseError::EligibleLeadersNotAvailable,
            "Eligible topic partition leaders are not available.",
        ),
        _ => unknown_partition(),
    };
    // Decided on this node's image first (no proposal for what needs no
    // election), then again by the quorum as the command applies.
    let Some(quorum) = broker.quorum() else {
        let node_id = broker.node_id();
        return match elect(replicas, &state, election, |id| id == node_id) {
            Err(why) => Err(refused(why)),
            Ok(_) => Err(ApiError::code(ResponseError::NotController)),
        };
    };
    quorum
        .image()
        .election(topic, partition, election)
        .map_err(refused)?;
    let result = broker.propose_command(MetadataCommand::ElectLeader {
        topic: topic.to_owned(),
        partition,
        election,
    })?;
    match result.refused {
        None => Ok(()),
        Some(why) => Err(refused(why)),
    }
}

/// Kafka's answer to an unknown election type (the request's error
/// response): INVALID_REQUEST at the top and for every partition asked
/// about.
fn invalid_type(request: &ElectLeadersRequest, election_type: i8) -> ElectLeadersResponse {
    let code = ResponseError::InvalidRequest.code();
    let message = format!("Unknown election type {election_type}");
    let results = request
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionResult::default()
                                .with_partition_id(*p)
                                .with_error_code(code)
                                .with_error_message(Some(str_bytes(message.clone())))
                        })
                        .collect(),
                )
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(code)
        .with_replica_election_results(results)
}

fn unknown(message: String) -> ApiError {
    ApiError::new(ResponseError::UnknownTopicOrPartition, message)
}
