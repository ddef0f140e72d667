//! CreateTopics v2-v7: partitions, replication factor (-1 for the broker
//! default; more than the live brokers is INVALID_REPLICATION_FACTOR),
//! manual assignments, validated configs, `validate_only`.
//!
//! - A name twice in one request: INVALID_REQUEST for each entry.
//! - v5+ results carry the partition count, replication factor and the
//!   topic's full config list; v7 the topic id.
//! - `timeout_ms` is moot: creation completes before the response.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::describe_configs::topic_configs;
use super::{check_replicas, duplicates, str_bytes};
use crate::broker::{check_partitions_per_request, Broker};
use crate::cluster::validate_topic_name;
use crate::config::validate_topic_config;
use crate::error::ApiError;
use crate::security::Session;

/// A topic as the request asks for it, once validated.
struct TopicPlan {
    partitions: Vec<Vec<i32>>,
    configs: BTreeMap<String, String>,
}

/// Answers a CreateTopics request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let repeated = duplicates(request.topics.iter().map(|t| t.name.0.as_str()));
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let result = CreatableTopicResult::default().with_name(topic.name.clone());
            let outcome = if repeated.contains(name) {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Found multiple entries for topic {name} in the request."),
                ))
            } else if !super::may_create_topic(broker, session, name) {
                Err(ApiError::new(
                    ResponseError::TopicAuthorizationFailed,
                    "Authorization failed.",
                ))
            } else {
                plan(broker, topic).and_then(|plan| {
                    if request.validate_only {
                        return Ok((uuid::Uuid::nil(), plan));
                    }
                    let meta = broker.create_topic(name, plan.partitions, plan.configs)?;
                    let created = TopicPlan {
                        partitions: meta.partitions.clone(),
                        configs: meta.configs.clone(),
                    };
                    Ok((meta.id, created))
                })
            };
            match outcome {
                Ok((id, plan)) => describe_created(broker, version, result, id, &plan),
                Err(e) => result
                    .with_error_code(e.code_i16())
                    .with_error_message(e.message.map(str_bytes))
                    .with_num_partitions(-1)
                    .with_replication_factor(-1),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

/// Validates one requested topic and works out its assignment and configs.
fn plan(broker: &Broker, topic: &CreatableTopic) -> Result<TopicPlan, ApiError> {
    let name = topic.name.0.as_str();
    validate_topic_name(name)?;
    broker.topics.check_new_name(name)?;
    let partitions = if topic.assignments.is_empty() {
        default_partitions(broker, topic)?
    } else {
        manual_partitions(broker, topic)?
    };
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let key = config.name.as_str();
        let Some(value) = config.value.as_ref() else {
            return Err(ApiError::new(
                ResponseError::InvalidConfig,
                format!("Null value not supported for topic configs: {key}"),
            ));
        };
        validate_topic_config(key, value)
            .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?;
        configs.insert(key.to_owned(), value.trim().to_owned());
    }
    Ok(TopicPlan {
        partitions,
        configs,
    })
}

fn default_partitions(broker: &Broker, topic: &CreatableTopic) -> Result<Vec<Vec<i32>>, ApiError> {
    let count = match topic.num_partitions {
        -1 => i32::try_from(broker.config().get_i64("num.partitions")).unwrap_or(1),
        n if n <= 0 => {
            return Err(ApiError::new(
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.",
            ))
        }
        n => n,
    };
    check_partitions_per_request(i64::from(count))?;
    let replicas = match topic.replication_factor {
        -1 => i16::try_from(broker.config().get_i64("default.replication.factor")).unwrap_or(1),
        n if n <= 0 => {
            return Err(ApiError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ))
        }
        n => n,
    };
    let live = broker.cluster().brokers.len();
    if usize::try_from(replicas).unwrap_or(usize::MAX) > live {
        return Err(ApiError::new(
            ResponseError::InvalidReplicationFactor,
            format!(
                "Unable to replicate the partition {replicas} time(s): The target replication factor of {replicas} cannot be reached because only {live} broker(s) are registered."
            ),
        ));
    }
    Ok(broker.default_assignment(0, count, replicas))
}

fn manual_partitions(broker: &Broker, topic: &CreatableTopic) -> Result<Vec<Vec<i32>>, ApiError> {
    if topic.num_partitions != -1 || topic.replication_factor != -1 {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
        ));
    }
    check_partitions_per_request(i64::try_from(topic.assignments.len()).unwrap_or(i64::MAX))?;
    let mut by_index = BTreeMap::new();
    for assignment in &topic.assignments {
        let replicas: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        check_replicas(broker, assignment.partition_index, &replicas)?;
        by_index.insert(assignment.partition_index, replicas);
    }
    let consecutive = by_index.len() == topic.assignments.len()
        && by_index
            .keys()
            .copied()
            .eq(0..i32::try_from(by_index.len()).unwrap_or(i32::MAX));
    if !consecutive {
        return Err(ApiError::new(
            ResponseError::InvalidReplicaAssignment,
            "Partitions should be a consecutive 0-based integer sequence",
        ));
    }
    Ok(by_index.into_values().collect())
}

fn describe_created(
    broker: &Broker,
    version: i16,
    result: CreatableTopicResult,
    id: uuid::Uuid,
    plan: &TopicPlan,
) -> CreatableTopicResult {
    let replication = plan.partitions.first().map_or(0, |r| r.len());
    let result = result
        .with_topic_id(id)
        .with_num_partitions(i32::try_from(plan.partitions.len()).unwrap_or(i32::MAX))
        .with_replication_factor(i16::try_from(replication).unwrap_or(i16::MAX));
    if version < 5 {
        return result;
    }
    let configs = topic_configs(broker, &plan.configs)
        .into_iter()
        .map(|entry| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(entry.name))
                .with_value(entry.value.map(str_bytes))
                .with_read_only(entry.read_only)
                .with_config_source(entry.source as i8)
                .with_is_sensitive(entry.sensitive)
        })
        .collect();
    result.with_configs(Some(configs))
}
