//! DeleteTopics v1-v6: by name (`topic_names`, v1-v5) or by name or id
//! (`topics`, v6). The topic's data is removed from disk before the
//! response.
//!
//! - Unknown name: UNKNOWN_TOPIC_OR_PARTITION; unknown id: UNKNOWN_TOPIC_ID.
//! - `delete.topic.enable=false`: TOPIC_DELETION_DISABLED.
//! - `error_message` exists from v5.
//! - Internal topics (`__consumer_offsets`) are refused with INVALID_REQUEST.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};

use super::{str_bytes, topic_name};
use crate::broker::Broker;
use crate::cluster::is_internal_topic;
use crate::error::ApiError;
use crate::security::acl::{Operation, ResourceType};
use crate::security::Session;

/// Answers a DeleteTopics request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
    version: i16,
    request: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let wanted: Vec<(Option<TopicName>, uuid::Uuid)> = if version >= 6 {
        request
            .topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .into_iter()
            .map(|n| (Some(n), uuid::Uuid::nil()))
            .collect()
    };
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let delete = |name: &str| {
                if broker.authorize(session, Operation::Delete, ResourceType::Topic, name) {
                    delete(broker, name)
                } else {
                    Err(ApiError::new(
                        ResponseError::TopicAuthorizationFailed,
                        "Authorization failed.",
                    ))
                }
            };
            let outcome = match &name {
                Some(name) => delete(&name.0),
                None => match broker.topics.get_by_id(&id) {
                    Some(meta) => delete(&meta.name),
                    None => Err(ApiError::code(ResponseError::UnknownTopicId)),
                },
            };
            let result = DeletableTopicResult::default()
                .with_name(name)
                .with_topic_id(id);
            match outcome {
                Ok((deleted_name, deleted_id)) => result
                    .with_name(Some(topic_name(&deleted_name)))
                    .with_topic_id(deleted_id),
                Err(e) => {
                    let result = result.with_error_code(e.code_i16());
                    if version >= 5 {
                        result.with_error_message(e.message.map(str_bytes))
                    } else {
                        result
                    }
                }
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

fn delete(broker: &Broker, name: &str) -> Result<(String, uuid::Uuid), ApiError> {
    if !broker.config().get_bool("delete.topic.enable") {
        return Err(ApiError::new(
            ResponseError::TopicDeletionDisabled,
            "Topic deletion is disabled.",
        ));
    }
    if is_internal_topic(name) {
        // Kafka would let it go and rebuild the coordinator from nothing;
        // strom's coordinators hold its partitions, so it refuses.
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Deleting the internal topic {name} is not supported."),
        ));
    }
    let meta = broker.delete_topic(name)?;
    Ok((meta.name.clone(), meta.id))
}
