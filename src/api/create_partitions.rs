//! CreatePartitions v0-v3: grow a topic to `count` partitions, optionally
//! with replica assignments for the new ones; `validate_only`.
//!
//! - Not a growth: INVALID_PARTITIONS with Kafka's message.
//! - A name twice: INVALID_REQUEST; unknown topic: UNKNOWN_TOPIC_OR_PARTITION.
//! - Assignments must cover exactly the new partitions, each with as many
//!   live, distinct brokers as the topic's replication factor.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::{check_replicas, duplicates, str_bytes};
use crate::broker::{check_partition_growth, Broker};
use crate::error::ApiError;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers a CreatePartitions request.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let repeated = duplicates(request.topics.iter().map(|t| t.name.0.as_str()));
    let results = request
        .topics
        .iter()
        .map(|topic| {
            let outcome = if repeated.contains(topic.name.0.as_str()) {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Duplicate topic in request.",
                ))
            } else if !broker.authorize(
                session,
                Operation::Alter,
                ResourceType::Topic,
                topic.name.0.as_str(),
            ) {
                Err(ApiError::new(
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.",
                ))
            } else {
                grow(broker, topic, request.validate_only)
            };
            let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code_i16())
                    .with_error_message(e.message.map(str_bytes)),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

fn grow(
    broker: &Broker,
    topic: &CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), ApiError> {
    let name = topic.name.0.as_str();
    let meta = broker.topics.get(name).ok_or_else(|| {
        ApiError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("The topic '{name}' does not exist."),
        )
    })?;
    let current = meta.partition_count();
    check_partition_growth(current, topic.count)?;
    let assignments = match &topic.assignments {
        None => None,
        Some(list) => {
            let added = topic.count - current;
            if usize::try_from(added).ok() != Some(list.len()) {
                return Err(ApiError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Increasing the number of partitions by {added} but {} assignments provided.",
                        list.len()
                    ),
                ));
            }
            let mut replicas_per_partition = Vec::with_capacity(list.len());
            for (partition, assignment) in (current..).zip(list) {
                let replicas: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
                check_replicas(broker, partition, &replicas)?;
                if replicas.len() != usize::try_from(meta.replication_factor()).unwrap_or(0) {
                    return Err(ApiError::new(
                        ResponseError::InvalidReplicaAssignment,
                        format!(
                            "Inconsistent replication factor between partitions, partition 0 has {} while partition {partition} has replicas {replicas:?}",
                            meta.replication_factor()
                        ),
                    ));
                }
                replicas_per_partition.push(replicas);
            }
            Some(replicas_per_partition)
        }
    };
    if !validate_only {
        broker.add_partitions(name, topic.count, assignments)?;
    }
    Ok(())
}
