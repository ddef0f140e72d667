//! DescribeConfigs v1-v4: topic and broker configs with value, source,
//! read-only and sensitive flags, synonyms (v1+ when asked), type and
//! documentation (v3+).
//!
//! - Topic (type 2): every topic-level key Kafka 4.1 reports; the value is
//!   the topic's override, else the broker's setting, else the default.
//! - Broker (type 4), this node's id: every broker key of Kafka 4.1 plus
//!   any custom key set dynamically, each with its most specific layer
//!   (dynamic per-broker, dynamic cluster default, static, default); keys
//!   Kafka cannot change dynamically are read-only; passwords are sensitive
//!   and have no value.
//! - Broker, empty name: the dynamic cluster-wide defaults only.
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
use crate::config::{
    broker_configs, broker_def, broker_def_for, BrokerConfig, ConfigSource, ConfigType,
    DynamicScope, UpdateMode, TOPIC_CONFIGS,
};
use crate::error::ApiError;
use crate::security::acl::Operation;
use crate::security::Session;

/// Kafka's resource type number for topics.
pub(super) const TOPIC_RESOURCE: i8 = 2;
/// Kafka's resource type number for brokers.
pub(super) const BROKER_RESOURCE: i8 = 4;

/// One described config, before it is put into a version's response type.
pub(super) struct ConfigEntry {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub sensitive: bool,
    /// Kafka's type number; 0 (UNKNOWN) for a custom key.
    pub kind: i8,
    pub doc: Option<&'static str>,
    /// Where else the value could come from, most specific first.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
}

/// Every topic-level config of a topic with `overrides`.
pub(super) fn topic_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<ConfigEntry> {
    let config = broker.config();
    TOPIC_CONFIGS
        .iter()
        .map(|topic_def| {
            let name = topic_def.def.name;
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(name) {
                synonyms.push((name.to_owned(), Some(v.clone()), ConfigSource::DynamicTopic));
            }
            synonyms.extend(config.broker_synonym_values(topic_def.broker_synonyms));
            if topic_def.broker_synonyms.is_empty() {
                if let Some(v) = topic_def.def.default {
                    synonyms.push((name.to_owned(), Some(v.to_owned()), ConfigSource::Default));
                }
            }
            let (value, source) = match overrides.get(name) {
                Some(v) => (Some(v.clone()), ConfigSource::DynamicTopic),
                None => config.topic_default(topic_def),
            };
            ConfigEntry {
                name: name.to_owned(),
                value,
                source,
                read_only: false,
                sensitive: false,
                kind: topic_def.def.kind as i8,
                doc: Some(topic_def.def.doc),
                synonyms,
            }
        })
        .collect()
}

/// The broker keys that share a value with `key` (`log.retention.ms`,
/// `.minutes`, `.hours`), most specific first; just `key` for most keys.
fn broker_synonyms(key: &str) -> Vec<&str> {
    TOPIC_CONFIGS
        .iter()
        .map(|t| t.broker_synonyms)
        .find(|group| group.len() > 1 && group.contains(&key))
        .map_or_else(|| vec![key], |group| group.to_vec())
}

/// One broker key as Kafka describes it: its own most specific value and
/// source; synonyms listed layer by layer from the first entry for `name`
/// (so a more specific synonym set elsewhere is not this key's value).
/// `per_broker` is false when describing the cluster-wide defaults, which
/// leave out the per-broker layer.
fn broker_entry(config: &BrokerConfig, name: &str, per_broker: bool) -> ConfigEntry {
    let def = broker_def_for(name);
    let sensitive = def.is_none_or(|d| d.def.kind == ConfigType::Password);
    let synonyms: Vec<_> = config
        .broker_synonym_values(&broker_synonyms(name))
        .into_iter()
        .filter(|(_, _, source)| per_broker || *source != ConfigSource::DynamicBroker)
        .skip_while(|(key, _, _)| key != name)
        .map(|(key, value, source)| (key, value.filter(|_| !sensitive), source))
        .collect();
    let (value, source) = synonyms
        .first()
        .map_or((None, ConfigSource::Unknown), |(_, v, s)| (v.clone(), *s));
    ConfigEntry {
        name: name.to_owned(),
        value,
        source,
        // As Kafka: only the exact names it declares dynamic are writable.
        read_only: broker_def(name).is_none_or(|d| d.mode == UpdateMode::ReadOnly),
        sensitive,
        kind: def.map_or(0, |d| d.def.kind as i8),
        doc: def.map(|d| d.def.doc),
        synonyms,
    }
}

/// Every broker key (with custom dynamic keys) of this node.
fn broker_configs_of_node(broker: &Broker) -> Vec<ConfigEntry> {
    let config = broker.config();
    let custom = [DynamicScope::Broker, DynamicScope::ClusterDefault]
        .into_iter()
        .flat_map(|scope| config.dynamic(scope).keys())
        .filter(|key| broker_def(key).is_none());
    let mut names: Vec<&str> = broker_configs()
        .iter()
        .map(|d| d.def.name)
        .chain(custom.map(String::as_str))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| broker_entry(&config, name, true))
        .collect()
}

/// The dynamic cluster-wide defaults.
fn cluster_default_configs(broker: &Broker) -> Vec<ConfigEntry> {
    let config = broker.config();
    config
        .dynamic(DynamicScope::ClusterDefault)
        .keys()
        .map(|name| broker_entry(&config, name, false))
        .collect()
}

/// Answers a DescribeConfigs request of `version`.
pub fn handle(
    broker: &Broker,
    session: &Session,
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
            let entries = super::config_resource_allowed(
                broker,
                session,
                Operation::DescribeConfigs,
                resource.resource_type,
                &resource.resource_name,
            )
            .and_then(|()| entries_for(broker, resource.resource_type, &resource.resource_name));
            match entries {
                Err(e) => result
                    .with_error_code(e.code_i16())
                    .with_error_message(e.message.map(str_bytes)),
                Ok(entries) => {
                    // Kafka's filter, quirks included: a config is listed when
                    // every requested key contains its name (so an empty list
                    // means all of them).
                    let wanted = resource.configuration_keys.as_ref();
                    let configs = entries
                        .into_iter()
                        .filter(|e| {
                            wanted.is_none_or(|keys| keys.iter().all(|k| k.contains(&e.name)))
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
        BROKER_RESOURCE if name.is_empty() => Ok(cluster_default_configs(broker)),
        BROKER_RESOURCE => {
            check_broker_name(broker, name)?;
            Ok(broker_configs_of_node(broker))
        }
        other => Err(unsupported_resource(other)),
    }
}

/// Checks that a broker resource names this node.
///
/// # Errors
/// INVALID_REQUEST with Kafka's message.
pub(super) fn check_broker_name(broker: &Broker, name: &str) -> Result<(), ApiError> {
    if name.parse::<i32>().ok() == Some(broker.node_id()) {
        return Ok(());
    }
    Err(ApiError::new(
        ResponseError::InvalidRequest,
        format!(
            "Unexpected broker id, expected {} or empty string, but received {name}",
            broker.node_id()
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
        .with_name(str_bytes(entry.name))
        .with_value(entry.value.map(str_bytes))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source as i8)
        .with_is_sensitive(entry.sensitive)
        .with_synonyms(synonyms);
    if version >= 3 {
        result = result.with_config_type(entry.kind);
        if request.include_documentation {
            result = result.with_documentation(entry.doc.map(str_bytes));
        }
    }
    result
}
