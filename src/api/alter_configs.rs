//! AlterConfigs v0-v2 (replace a resource's whole override set) and
//! IncrementalAlterConfigs v0-v1 (SET, DELETE, APPEND, SUBTRACT per key).
//!
//! - Topics: every value is validated (unknown key or bad value:
//!   INVALID_CONFIG) and the new set is persisted; `validate_only` stores
//!   nothing. APPEND/SUBTRACT apply only to LIST keys.
//! - Brokers: strom has no dynamic broker configs, so, as Kafka does for
//!   read-only keys, INVALID_REQUEST "Cannot update these configs dynamically".

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource as IncrementalResource;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;

use super::describe_configs::{
    check_broker_name, unsupported_resource, BROKER_RESOURCE, TOPIC_RESOURCE,
};
use super::{duplicates, str_bytes};
use crate::broker::Broker;
use crate::cluster::validate_topic_name;
use crate::config::{topic_def, validate_topic_config, ConfigType};
use crate::error::ApiError;

type Overrides = BTreeMap<String, String>;

/// Answers an AlterConfigs request: each resource's overrides become exactly
/// the listed keys.
pub fn handle(broker: &Broker, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let keys: Vec<&str> = resource.configs.iter().map(|c| c.name.as_str()).collect();
            let outcome = alter(
                broker,
                resource.resource_type,
                &resource.resource_name,
                &keys,
                request.validate_only,
                |overrides| {
                    overrides.clear();
                    for config in &resource.configs {
                        set(overrides, config.name.as_str(), config.value.as_ref())?;
                    }
                    Ok(())
                },
            );
            let (code, message) = split(outcome);
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

/// Answers an IncrementalAlterConfigs request: each listed key is set,
/// deleted, appended to or subtracted from; other overrides stay.
pub fn handle_incremental(
    broker: &Broker,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let keys: Vec<&str> = resource.configs.iter().map(|c| c.name.as_str()).collect();
            let outcome = if duplicates(keys.iter().copied()).is_empty() {
                alter(
                    broker,
                    resource.resource_type,
                    &resource.resource_name,
                    &keys,
                    request.validate_only,
                    |overrides| apply_operations(overrides, resource),
                )
            } else {
                Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    "Error due to duplicate config keys",
                ))
            };
            let (code, message) = split(outcome);
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

/// Applies `change` to one resource's overrides and stores the result
/// (unless `validate_only`).
fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    keys: &[&str],
    validate_only: bool,
    change: impl FnOnce(&mut Overrides) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    match resource_type {
        TOPIC_RESOURCE => {
            validate_topic_name(name)?;
            if validate_only {
                let meta = broker.topics.get(name).ok_or_else(|| unknown_topic(name))?;
                change(&mut meta.configs.clone())
            } else {
                broker
                    .update_topic_configs(name, change)
                    .map_err(|e| match e.code {
                        ResponseError::UnknownTopicOrPartition => unknown_topic(name),
                        _ => e,
                    })
            }
        }
        BROKER_RESOURCE => {
            if !name.is_empty() {
                check_broker_name(broker, name)?;
            }
            Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!(
                    "Cannot update these configs dynamically: Set({})",
                    keys.join(", ")
                ),
            ))
        }
        other => Err(unsupported_resource(other)),
    }
}

fn apply_operations(
    overrides: &mut Overrides,
    resource: &IncrementalResource,
) -> Result<(), ApiError> {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    for config in &resource.configs {
        let key = config.name.as_str();
        match config.config_operation {
            SET => set(overrides, key, config.value.as_ref())?,
            DELETE => {
                validate_key(key)?;
                overrides.remove(key);
            }
            op @ (APPEND | SUBTRACT) => {
                let def = validate_key(key)?;
                let verb = if op == APPEND { "append" } else { "subtract" };
                if def.kind != ConfigType::List {
                    return Err(invalid_config(format!(
                        "Config value {verb} is not allowed for config key: {key}"
                    )));
                }
                let current = overrides
                    .get(key)
                    .map(String::as_str)
                    .or(def.default)
                    .unwrap_or_default();
                let mut items: Vec<&str> = current
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                let given = config.value.as_ref().map_or("", |v| v.as_str());
                for item in given.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if op == APPEND && !items.contains(&item) {
                        items.push(item);
                    } else if op == SUBTRACT {
                        items.retain(|i| *i != item);
                    }
                }
                let joined = items.join(",");
                validate_topic_config(key, &joined).map_err(invalid_config)?;
                overrides.insert(key.to_owned(), joined);
            }
            other => {
                return Err(ApiError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown alter config operation {other} for config key: {key}"),
                ))
            }
        }
    }
    Ok(())
}

/// Validates and sets one key; a null value is INVALID_REQUEST, as in Kafka.
fn set(overrides: &mut Overrides, key: &str, value: Option<&StrBytes>) -> Result<(), ApiError> {
    let Some(value) = value else {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Null value not supported for : {key}"),
        ));
    };
    validate_topic_config(key, value).map_err(invalid_config)?;
    overrides.insert(key.to_owned(), value.trim().to_owned());
    Ok(())
}

fn validate_key(key: &str) -> Result<&'static crate::config::ConfigDef, ApiError> {
    topic_def(key)
        .map(|d| &d.def)
        .ok_or_else(|| invalid_config(format!("Unknown topic config name: {key}")))
}

fn invalid_config(message: String) -> ApiError {
    ApiError::new(ResponseError::InvalidConfig, message)
}

fn unknown_topic(name: &str) -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        format!("Topic '{name}' does not exist."),
    )
}

fn split(outcome: Result<(), ApiError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (e.code_i16(), e.message.map(str_bytes)),
    }
}
