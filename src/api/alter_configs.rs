//! AlterConfigs v0-v2 (replace a resource's whole override set) and
//! IncrementalAlterConfigs v0-v1 (SET, DELETE, APPEND, SUBTRACT per key).
//!
//! - Topics: every value is validated (unknown key or bad value:
//!   INVALID_CONFIG) and the new set is persisted; `validate_only` stores
//!   nothing. APPEND/SUBTRACT apply only to LIST keys.
//! - Brokers (name `""`: the cluster-wide defaults; or this node's id): the
//!   keys Kafka can update dynamically, and custom keys Kafka does not know,
//!   are stored and take effect where strom reads them (e.g. `log.*` topic
//!   defaults). As in Kafka (KAFKA-13609), every refusal is INVALID_REQUEST:
//!   a read-only key ("Cannot update these configs dynamically"), a
//!   per-broker key at the cluster level, a bad value.

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
use crate::config::{
    broker_def_for, topic_def, update_mode, ConfigDef, ConfigType, DynamicScope, UpdateMode,
};
use crate::error::ApiError;
use crate::security::acl::Operation;
use crate::security::Session;

type Overrides = BTreeMap<String, String>;

/// Answers an AlterConfigs request: each resource's overrides become exactly
/// the listed keys.
pub fn handle(
    broker: &Broker,
    session: &Session,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let keys = resource.configs.iter().map(|c| c.name.as_str());
            let outcome = super::config_resource_allowed(
                broker,
                session,
                Operation::AlterConfigs,
                resource.resource_type,
                &resource.resource_name,
            )
            .and_then(|()| {
                alter(
                    broker,
                    resource.resource_type,
                    &resource.resource_name,
                    request.validate_only,
                    |target, overrides| {
                        target.check_keys(keys)?;
                        overrides.clear();
                        for config in &resource.configs {
                            set(
                                target,
                                overrides,
                                config.name.as_str(),
                                config.value.as_ref(),
                            )?;
                        }
                        Ok(())
                    },
                )
            });
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
    session: &Session,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .iter()
        .map(|resource| {
            let keys = resource.configs.iter().map(|c| c.name.as_str());
            let allowed = super::config_resource_allowed(
                broker,
                session,
                Operation::AlterConfigs,
                resource.resource_type,
                &resource.resource_name,
            );
            let outcome = if let Err(e) = allowed {
                Err(e)
            } else if duplicates(keys).is_empty() {
                alter(
                    broker,
                    resource.resource_type,
                    &resource.resource_name,
                    request.validate_only,
                    |target, overrides| apply_operations(target, overrides, resource),
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

/// SSL keys Kafka updates dynamically only under a listener prefix
/// (`SslConfigs.RECONFIGURABLE_CONFIGS`).
const LISTENER_ONLY_CONFIGS: &[&str] = &[
    "ssl.key.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.type",
    "ssl.truststore.certificates",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.type",
];

/// Whose keys a change applies to, and so which rules they follow.
#[derive(Clone, Copy)]
enum Target {
    /// A topic: only topic-level keys, bad ones are INVALID_CONFIG.
    Topic,
    /// A dynamic broker layer: dynamic or custom keys, bad ones are INVALID_REQUEST.
    Broker(DynamicScope),
}

impl Target {
    /// The definition of `key`; `None` for a custom broker key.
    fn def(self, key: &str) -> Result<Option<&'static ConfigDef>, ApiError> {
        match self {
            Target::Topic => topic_def(key)
                .map(|d| Some(&d.def))
                .ok_or_else(|| invalid_config(format!("Unknown topic config name: {key}"))),
            Target::Broker(_) => Ok(broker_def_for(key).map(|d| &d.def)),
        }
    }

    /// Checks a value `key` is to take.
    fn validate(self, key: &str, value: &str) -> Result<(), ApiError> {
        let Some(def) = self.def(key)? else {
            return Ok(());
        };
        def.validate(value).map_err(|message| match self {
            Target::Topic => invalid_config(message),
            Target::Broker(_) => ApiError::new(ResponseError::InvalidRequest, message),
        })
    }

    /// Kafka's whole-request checks for a broker layer: every key set must
    /// be dynamic (or custom), and per-broker keys need a broker id.
    fn check_keys<'a>(self, keys: impl Iterator<Item = &'a str>) -> Result<(), ApiError> {
        let Target::Broker(scope) = self else {
            return Ok(());
        };
        let keys: Vec<&str> = keys.collect();
        let with_mode = |wanted: UpdateMode| -> Vec<&str> {
            keys.iter()
                .copied()
                .filter(|k| update_mode(k) == Some(wanted))
                .collect()
        };
        let refuse = |why: &str, names: Vec<&str>| {
            Err(ApiError::new(
                ResponseError::InvalidRequest,
                format!("{why}: Set({})", names.join(", ")),
            ))
        };
        let read_only = with_mode(UpdateMode::ReadOnly);
        if !read_only.is_empty() {
            return refuse("Cannot update these configs dynamically", read_only);
        }
        let bare_security: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| LISTENER_ONLY_CONFIGS.contains(k))
            .collect();
        if !bare_security.is_empty() {
            return refuse(
                "These security configs can be dynamically updated only per-listener using the listener prefix",
                bare_security,
            );
        }
        let per_broker = with_mode(UpdateMode::PerBroker);
        if scope == DynamicScope::ClusterDefault && !per_broker.is_empty() {
            return refuse(
                "Cannot update these configs at default cluster level, broker id must be specified",
                per_broker,
            );
        }
        Ok(())
    }
}

/// Applies `change` to one resource's overrides and stores the result
/// (unless `validate_only`).
fn alter(
    broker: &Broker,
    resource_type: i8,
    name: &str,
    validate_only: bool,
    change: impl FnOnce(Target, &mut Overrides) -> Result<(), ApiError>,
) -> Result<(), ApiError> {
    match resource_type {
        TOPIC_RESOURCE => {
            validate_topic_name(name)?;
            let change = |overrides: &mut Overrides| change(Target::Topic, overrides);
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
            let scope = if name.is_empty() {
                DynamicScope::ClusterDefault
            } else {
                check_broker_name(broker, name)?;
                DynamicScope::Broker
            };
            broker.update_broker_configs(scope, validate_only, |overrides| {
                change(Target::Broker(scope), overrides)
            })
        }
        other => Err(unsupported_resource(other)),
    }
}

fn apply_operations(
    target: Target,
    overrides: &mut Overrides,
    resource: &IncrementalResource,
) -> Result<(), ApiError> {
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    let set_keys = resource
        .configs
        .iter()
        .filter(|c| c.config_operation != DELETE)
        .map(|c| c.name.as_str());
    target.check_keys(set_keys)?;
    for config in &resource.configs {
        let key = config.name.as_str();
        match config.config_operation {
            SET => set(target, overrides, key, config.value.as_ref())?,
            DELETE => {
                target.def(key)?;
                overrides.remove(key);
            }
            op @ (APPEND | SUBTRACT) => {
                let verb = if op == APPEND { "append" } else { "subtract" };
                let Some(def) = target.def(key)?.filter(|d| d.kind == ConfigType::List) else {
                    return Err(invalid_config(format!(
                        "Config value {verb} is not allowed for config key: {key}"
                    )));
                };
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
                target.validate(key, &joined)?;
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
fn set(
    target: Target,
    overrides: &mut Overrides,
    key: &str,
    value: Option<&StrBytes>,
) -> Result<(), ApiError> {
    let Some(value) = value else {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!("Null value not supported for : {key}"),
        ));
    };
    target.validate(key, value)?;
    overrides.insert(key.to_owned(), value.trim().to_owned());
    Ok(())
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
