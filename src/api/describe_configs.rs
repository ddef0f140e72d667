//! DescribeConfigs v1-v4: topic and broker configs with value, source,
//! read-only and sensitive flags, synonyms (v1+ when asked), type and
//! documentation (v3+).
//!
//! - Topic (type 2): every topic-level key Kafka 4.1 reports; the value is
//!   the topic's override, else the broker's setting, else the default.
//! - Broker (type 4): every broker key strom knows, for this node's id;
//!   all read-only (strom has no dynamic broker configs yet). The empty name
//!   (cluster-wide dynamic defaults) has none.
//! - Other resource types (loggers, client metrics, groups): INVALID_REQUEST.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::cluster::validate_topic_name;
use crate::config::{broker_def, ConfigDef, ConfigSource, BROKER_CONFIGS, TOPIC_CONFIGS};
use crate::error::ApiError;

/// Kafka's resource type number for topics.
pub(super) const TOPIC_RESOURCE: i8 = 2;
/// Kafka's resource type number for brokers.
pub(super) const BROKER_RESOURCE: i8 = 4;

/// One described config, before it is put into a version's response type.
pub(super) struct ConfigEntry {
    pub def: &'static ConfigDef,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    /// Where else the value could come from, most specific first.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Every topic-level config of a topic with `overrides`.
pub(super) fn topic_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    TOPIC_CONFIGS
        .iter()
        .map(|topic_def| {
            let name = topic_def.def.name;
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(name) {
                synonyms.push((name.to_owned(), Some(v.clone()), ConfigSource::DynamicTopic));
            }
            for key in topic_def.broker_synonyms {
                if broker.config.is_explicit(key) {
                    let value = broker.config.get(key).map(str::to_owned);
                    synonyms.push(((*key).to_owned(), value, ConfigSource::StaticBroker));
                }
            }
            let (default, default_source) = broker.config.topic_default(topic_def);
            // The built-in default is reported under the least specific broker
            // key that has one, in that key's own unit (log.retention.hours=168).
            let built_in = topic_def
                .broker_synonyms
                .iter()
                .rev()
                .find_map(|key| broker_def(key).and_then(|d| d.default).map(|v| (*key, v)))
                .or_else(|| topic_def.def.default.map(|v| (name, v)));
            if let Some((key, value)) = built_in {
                synonyms.push((
                    key.to_owned(),
                    Some(value.to_owned()),
                    ConfigSource::Default,
                ));
            }
            let (value, source) = match overrides.get(name) {
                Some(v) => (Some(v.clone()), ConfigSource::DynamicTopic),
                None => (default, default_source),
            };
            ConfigEntry {
                def: &topic_def.def,
                value,
                source,
                read_only: false,
                synonyms,
            }
        })
        .collect()
}

fn broker_configs(broker: &Broker) -> Vec<ConfigEntry> {
    BROKER_CONFIGS
        .iter()
        .map(|def| {
            let source = if broker.config.is_explicit(def.name) {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            };
            let value = broker.config.get(def.name).map(str::to_owned);
            ConfigEntry {
                def,
                synonyms: vec![(def.name.to_owned(), value.clone(), source)],
                value,
                source,
                read_only: true,
            }
        })
        .collect()
}

/// Answers a DescribeConfigs request of `version`.
pub fn handle(
    broker: &Broker,
    version: i16,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match entries_for(broker, resource.resource_type, &resource.resource_name) {
                Err(e) => result
                    .with_error_code(e.code_i16())
                    .with_error_message(e.message.map(str_bytes)),
                Ok(entries) => {
                    let wanted = resource.configuration_keys.as_ref();
                    let configs = entries
                        .into_iter()
                        .filter(|e| {
                            wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.def.name))
                        })
                        .map(|e| to_wire(e, version, request))
                        .collect();
                    result.with_configs(configs)
                }
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entries_for(
    broker: &Broker,
    resource_type: i8,
    name: &str,
) -> Result<Vec<ConfigEntry>, ApiError> {
    match resource_type {
        TOPIC_RESOURCE => {
            validate_topic_name(name)?;
            let meta = broker.topics.get(name).ok_or_else(|| {
                ApiError::new(
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{name}' does not exist."),
                )
            })?;
            Ok(topic_configs(broker, &meta.configs))
        }
        BROKER_RESOURCE if name.is_empty() => Ok(Vec::new()),
        BROKER_RESOURCE => {
            check_broker_name(broker, name)?;
            Ok(broker_configs(broker))
        }
        other => Err(unsupported_resource(other)),
    }
}

/// Checks that a broker resource names this node.
///
/// # Errors
/// INVALID_REQUEST with Kafka's message.
pub(super) fn check_broker_name(broker: &Broker, name: &str) -> Result<(), ApiError> {
    if name.parse::<i32>().ok() == Some(broker.cluster.node_id) {
        return Ok(());
    }
    Err(ApiError::new(
        ResponseError::InvalidRequest,
        format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.cluster.node_id
        ),
    ))
}

/// The error for a resource type strom does not serve configs for.
pub(super) fn unsupported_resource(resource_type: i8) -> ApiError {
    ApiError::new(
        ResponseError::InvalidRequest,
        format!("Unsupported resource type {resource_type}"),
    )
}

fn to_wire(
    entry: ConfigEntry,
    version: i16,
    request: &DescribeConfigsRequest,
) -> DescribeConfigsResourceResult {
    let synonyms = if request.include_synonyms {
        entry
            .synonyms
            .into_iter()
            .map(|(name, value, source)| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(name))
                    .with_value(value.map(str_bytes))
                    .with_source(source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(entry.def.name))
        .with_value(entry.value.map(str_bytes))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source as i8)
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if version >= 3 {
        result = result.with_config_type(entry.def.kind as i8);
        if request.include_documentation {
            result = result.with_documentation(Some(str_bytes(entry.def.doc)));
        }
    }
    result
}
