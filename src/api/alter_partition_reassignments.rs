//! AlterPartitionReassignments v0-v1 (`kafka-reassign-partitions.sh
//! --execute / --cancel`), as Kafka's controller
//! (`ReplicationControlManager.alterPartitionReassignment`) answers it.
//!
//! Per partition: UNKNOWN_TOPIC_OR_PARTITION ("Unable to find a topic
//! named T.", "Unable to find partition T:P."); a target that is empty,
//! names an unregistered broker or one broker twice is
//! INVALID_REPLICA_ASSIGNMENT with Kafka's messages; null replicas cancel
//! the ongoing reassignment (NO_REASSIGNMENT_IN_PROGRESS, with no message,
//! without one).
//! v1's `allow_replication_factor_change` is echoed; when false, a target
//! of another size than the current replicas (an ongoing reassignment's
//! target) is INVALID_REPLICATION_FACTOR ("The replication factor is
//! changed from N to M").
//!
//! In a cluster each partition is a `MetadataCommand::AlterReassignment`:
//! the assignment becomes target + removed replicas; the added replicas
//! (every node already keeps a log for every partition) follow the
//! leader, catch up and join the ISR, and that ISR change completes the
//! reassignment (removed replicas stop following; their local copy is
//! kept). A single node's only possible target is itself: accepted,
//! nothing changes.

use std::collections::BTreeSet;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse,
};

use super::str_bytes;
use crate::broker::Broker;
use crate::cluster::quorum::{MetadataCommand, Refusal};
use crate::error::ApiError;

/// Answers an AlterPartitionReassignments request.
pub fn handle(
    broker: &Broker,
    request: &AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let responses = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let target = p
                        .replicas
                        .as_ref()
                        .map(|r| r.iter().map(|b| b.0).collect::<Vec<i32>>());
                    let allow = request.allow_replication_factor_change;
                    let (code, message) =
                        match reassign(broker, &topic.name.0, p.partition_index, target, allow) {
                            Ok(()) => (0, None),
                            Err(e) => (e.code.code(), e.message.map(str_bytes)),
                        };
                    ReassignablePartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                        .with_error_message(message)
                })
                .collect();
            ReassignableTopicResponse::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change)
        .with_responses(responses)
}

fn reassign(
    broker: &Broker,
    topic: &str,
    partition: i32,
    target: Option<Vec<i32>>,
    allow_replication_factor_change: bool,
) -> Result<(), ApiError> {
    let meta = broker.topics.get(topic).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find a topic named {topic}."),
        )
    })?;
    let current = usize::try_from(partition)
        .ok()
        .and_then(|p| meta.partitions.get(p))
        .ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Unable to find partition {topic}:{partition}."),
            )
        })?;
    let registered: BTreeSet<i32> = match broker.quorum() {
        Some(quorum) => quorum.image().brokers.keys().copied().collect(),
        None => BTreeSet::from([broker.node_id()]),
    };
    if let Some(target) = &target {
        validate(target, &registered)?;
        if !allow_replication_factor_change {
            // An ongoing reassignment's replicas are its target + removing.
            let removing = broker
                .partition_state(topic, partition)
                .map(|s| s.removing)
                .unwrap_or_default();
            let size = current.iter().filter(|id| !removing.contains(id)).count();
            if size != target.len() {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicationFactor,
                    format!(
                        "The replication factor is changed from {size} to {}",
                        target.len()
                    ),
                ));
            }
        }
    }
    // Kafka's ApiError.fromThrowable drops a message equal to the code's
    // default one: this answer has none.
    let no_reassignment = || ApiError::code(ResponseError::NoReassignmentInProgress);
    if !broker.in_quorum() {
        // One node: the target can only be the current assignment.
        return match target {
            None => Err(no_reassignment()),
            Some(_) => Ok(()),
        };
    }
    let result = broker.propose_command(MetadataCommand::AlterReassignment {
        topic: topic.to_owned(),
        partition,
        target,
    })?;
    match result.refused {
        None => Ok(()),
        Some(Refusal::NoReassignmentInProgress) => Err(no_reassignment()),
        Some(_) => Err(ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Unable to find partition {topic}:{partition}."),
        )),
    }
}

/// Kafka's `validateManualPartitionAssignment`.
fn validate(target: &[i32], registered: &BTreeSet<i32>) -> Result<(), ApiError> {
    let invalid = |message: String| ApiError::new(ResponseError::InvalidReplicaAssignment, message);
    if target.is_empty() {
        return Err(invalid(
            "The manual partition assignment includes an empty replica list.".into(),
        ));
    }
    let mut sorted = target.to_vec();
    sorted.sort_unstable();
    let mut previous = None;
    for id in sorted {
        if !registered.contains(&id) {
            return Err(invalid(format!(
                "The manual partition assignment includes broker {id}, but no such broker is registered."
            )));
        }
        if previous == Some(id) {
            return Err(invalid(format!(
                "The manual partition assignment includes the broker {id} more than once."
            )));
        }
        previous = Some(id);
    }
    Ok(())
}
