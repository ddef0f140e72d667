//! Broker configuration: every setting under Kafka's name, in Kafka's
//! layers (lowest precedence first): built-in defaults; the static config
//! from a `server.properties`-style file, `KAFKA_*` environment variables
//! (Kafka's container conventions, `env`), dedicated CLI flags and `--set`;
//! dynamic cluster-wide defaults; dynamic per-broker values. Plus the rules
//! that turn broker-level keys into topic-level defaults.

mod broker_defs;
mod defs;
mod env;
mod listeners;

pub use broker_defs::{
    broker_configs, broker_def, broker_def_for, update_mode, BrokerConfigDef, UpdateMode,
};
pub use defs::{topic_def, ConfigDef, ConfigType, TopicConfigDef, TOPIC_CONFIGS};
pub use env::{container_settings, EnvSetting};
pub use listeners::{ListenerSpec, SecurityProtocol};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where a config value comes from, numbered as DescribeConfigs v1+ reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// No layer sets the key (a key whose default is null).
    Unknown = 0,
    /// A per-topic override.
    DynamicTopic = 1,
    /// Set dynamically for this broker (AlterConfigs on broker `<id>`).
    DynamicBroker = 2,
    /// Set dynamically as the cluster-wide default (AlterConfigs on broker `""`).
    DynamicDefaultBroker = 3,
    /// Set in the broker's config file or on its command line.
    StaticBroker = 4,
    /// Kafka's built-in default.
    Default = 5,
}

/// Which dynamic broker layer an AlterConfigs request changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynamicScope {
    /// The cluster-wide default (resource name `""`).
    ClusterDefault,
    /// This broker (resource name = its node id).
    Broker,
}

/// Keys of Kafka's StandardAuthorizer, which are no KafkaConfig keys (so
/// not in the table, and not listed by DescribeConfigs) but belong in a
/// broker's `server.properties`: `super.users` (principals separated by
/// `;`) and `allow.everyone.if.no.acl.found` (unset: false).
const AUTHORIZER_KEYS: &[&str] = &["super.users", "allow.everyone.if.no.acl.found"];

/// A configuration mistake: one clear line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key Kafka (or strom) does not know.
    #[error("unknown config key '{key}' ({origin})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// Where it was written (file and line, or `--set`).
        origin: String,
    },
    /// A value that fails the key's rules.
    #[error("{message} ({origin})")]
    InvalidValue {
        /// Kafka-style explanation.
        message: String,
        /// Where it was written.
        origin: String,
    },
    /// A line of the config file that is not `key=value`.
    #[error("{origin}: expected key=value")]
    Syntax {
        /// File and line.
        origin: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The broker's settings. Values live as strings under Kafka's keys, exactly
/// as an operator wrote them; typed getters parse them on demand. The
/// dynamic layers are replaced whole (see [`BrokerConfig::with_dynamic`]),
/// so a `BrokerConfig` is an immutable snapshot once the broker runs.
#[derive(Debug, Clone, Default)]
pub struct BrokerConfig {
    explicit: BTreeMap<String, String>,
    dynamic_default: BTreeMap<String, String>,
    dynamic_broker: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// A config with every key at its default.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets one broker key after checking the key exists (a Kafka broker key,
    /// possibly under a `listener.name.<listener>.` prefix) and the value is valid.
    ///
    /// # Errors
    /// [`ConfigError::UnknownKey`] or [`ConfigError::InvalidValue`], naming `origin`.
    pub fn set(&mut self, key: &str, value: &str, origin: &str) -> Result<(), ConfigError> {
        if AUTHORIZER_KEYS.contains(&key) {
            self.explicit
                .insert(key.to_owned(), value.trim().to_owned());
            return Ok(());
        }
        let def = broker_def_for(key).ok_or_else(|| ConfigError::UnknownKey {
            key: key.to_owned(),
            origin: origin.to_owned(),
        })?;
        def.def
            .validate(value)
            .map_err(|message| ConfigError::InvalidValue {
                message,
                origin: origin.to_owned(),
            })?;
        self.explicit
            .insert(key.to_owned(), value.trim().to_owned());
        Ok(())
    }

    /// Reads a Kafka `server.properties`-style file (`key=value` or
    /// `key: value` lines, `#`/`!` comments) into this config.
    ///
    /// # Errors
    /// Unreadable file, a malformed line, an unknown key or a bad value.
    pub fn load_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let origin = format!("{}:{}", path.display(), number + 1);
            let (key, value) = split_assignment(line).ok_or(ConfigError::Syntax {
                origin: origin.clone(),
            })?;
            self.set(key, value, &origin)?;
        }
        Ok(())
    }

    /// A copy with one dynamic layer replaced by `values`.
    pub fn with_dynamic(&self, scope: DynamicScope, values: BTreeMap<String, String>) -> Self {
        let mut next = self.clone();
        match scope {
            DynamicScope::ClusterDefault => next.dynamic_default = values,
            DynamicScope::Broker => next.dynamic_broker = values,
        }
        next
    }

    /// The keys set in one dynamic layer.
    pub fn dynamic(&self, scope: DynamicScope) -> &BTreeMap<String, String> {
        match scope {
            DynamicScope::ClusterDefault => &self.dynamic_default,
            DynamicScope::Broker => &self.dynamic_broker,
        }
    }

    /// The layers that hold explicitly set values, most specific first.
    fn layers(&self) -> [(ConfigSource, &BTreeMap<String, String>); 3] {
        [
            (ConfigSource::DynamicBroker, &self.dynamic_broker),
            (ConfigSource::DynamicDefaultBroker, &self.dynamic_default),
            (ConfigSource::StaticBroker, &self.explicit),
        ]
    }

    /// The value of a broker key and where it comes from: the most specific
    /// layer that sets it, else Kafka's default. `None` for keys whose
    /// default is null.
    pub fn lookup(&self, key: &str) -> Option<(&str, ConfigSource)> {
        self.explicit_lookup(key).or_else(|| {
            broker_def(key)
                .and_then(|d| d.def.default)
                .map(|v| (v, ConfigSource::Default))
        })
    }

    /// Like [`BrokerConfig::lookup`], without Kafka's default.
    fn explicit_lookup(&self, key: &str) -> Option<(&str, ConfigSource)> {
        self.layers()
            .into_iter()
            .find_map(|(source, layer)| layer.get(key).map(|v| (v.as_str(), source)))
    }

    /// The value of a broker key (see [`BrokerConfig::lookup`]).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lookup(key).map(|(value, _)| value)
    }

    /// Whether `key` is set in any layer (file, flags or dynamically).
    pub fn is_explicit(&self, key: &str) -> bool {
        self.layers()
            .iter()
            .any(|(_, layer)| layer.contains_key(key))
    }

    /// A numeric broker key (validated on `set`, so parse failures fall back to 0).
    pub fn get_i64(&self, key: &str) -> i64 {
        self.get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_default()
    }

    /// A boolean broker key.
    pub fn get_bool(&self, key: &str) -> bool {
        self.get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// The metadata quorum's voters from `controller.quorum.voters`
    /// (`id@host:port,...`): node id → controller `host:port`; `None` when
    /// unset (a single node).
    ///
    /// # Errors
    /// A malformed entry, or `controller.quorum.bootstrap.servers` alone
    /// (dynamic quorums are not supported yet).
    pub fn quorum_voters(&self) -> Result<Option<BTreeMap<i32, String>>, ConfigError> {
        let invalid = |message: String| ConfigError::InvalidValue {
            message,
            origin: "controller.quorum.voters".into(),
        };
        let voters = self.get("controller.quorum.voters").unwrap_or("").trim();
        if voters.is_empty() {
            // A broker that is no controller finds the controllers through
            // the bootstrap servers. A controller whose bootstrap servers
            // are one address is a quorum of one, as Kafka's default
            // server.properties (`controller.quorum.bootstrap.servers=
            // localhost:9093` after `kafka-storage.sh format --standalone`);
            // more need a dynamic voter set.
            let bootstrap = self.quorum_bootstrap_servers();
            if self.process_roles()? != Roles::Broker {
                if let [only] = bootstrap.as_slice() {
                    return Ok(Some(BTreeMap::from([(self.node_id(), only.clone())])));
                }
            }
            if self.is_explicit("controller.quorum.bootstrap.servers")
                && self.process_roles()? != Roles::Broker
            {
                return Err(ConfigError::InvalidValue {
                    message: "a dynamic quorum of several controllers is not supported yet: \
                              list the voters in controller.quorum.voters"
                        .into(),
                    origin: "controller.quorum.bootstrap.servers".into(),
                });
            }
            return Ok(None);
        }
        let mut parsed = BTreeMap::new();
        for entry in voters.split(',').map(str::trim) {
            let (id, address) = entry
                .split_once('@')
                .ok_or_else(|| invalid(format!("'{entry}' is not id@host:port")))?;
            let id: i32 = id
                .trim()
                .parse()
                .map_err(|_| invalid(format!("'{entry}': '{id}' is not a node id")))?;
            let port_ok = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !port_ok {
                return Err(invalid(format!("'{entry}': '{address}' is not host:port")));
            }
            if parsed.insert(id, address.trim().to_owned()).is_some() {
                return Err(invalid(format!("node id {id} is listed twice")));
            }
        }
        Ok(Some(parsed))
    }

    /// `controller.quorum.bootstrap.servers`: the controllers' `host:port`
    /// (a broker that is no controller fetches the metadata from them).
    pub fn quorum_bootstrap_servers(&self) -> Vec<String> {
        self.get("controller.quorum.bootstrap.servers")
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// `process.roles`: `broker,controller` (the default), `broker` or
    /// `controller`.
    ///
    /// # Errors
    /// Anything else.
    pub fn process_roles(&self) -> Result<Roles, ConfigError> {
        let roles = self.get("process.roles").unwrap_or("broker,controller");
        let mut listed: Vec<&str> = roles.split(',').map(str::trim).collect();
        listed.sort_unstable();
        listed.dedup();
        match listed.as_slice() {
            ["broker", "controller"] => Ok(Roles::Combined),
            ["broker"] => Ok(Roles::Broker),
            ["controller"] => Ok(Roles::Controller),
            _ => Err(ConfigError::InvalidValue {
                message: format!(
                    "'{roles}': the roles are broker, controller, or broker,controller"
                ),
                origin: "process.roles".into(),
            }),
        }
    }

    /// The controller listener's bind address: the entry of `listeners`
    /// named in `controller.listener.names` (`CONTROLLER` when unset).
    pub fn controller_listen_address(&self) -> Option<String> {
        let names = self
            .get("controller.listener.names")
            .unwrap_or("CONTROLLER");
        let listeners = self.get("listeners")?;
        listeners.split(',').map(str::trim).find_map(|entry| {
            let (name, address) = entry.split_once("://")?;
            names
                .split(',')
                .any(|n| n.trim() == name)
                .then(|| bind_form(address))
        })
    }

    /// The data directory: the first of `log.dirs`, else `log.dir`.
    pub fn data_dir(&self) -> PathBuf {
        let dirs = self
            .get("log.dirs")
            .and_then(|d| d.split(',').map(str::trim).find(|d| !d.is_empty()));
        PathBuf::from(dirs.or(self.get("log.dir")).unwrap_or("./data"))
    }

    /// This broker's node id (`node.id`, or `broker.id` where only that is set).
    pub fn node_id(&self) -> i32 {
        let id = if !self.is_explicit("node.id") && self.is_explicit("broker.id") {
            self.get_i64("broker.id")
        } else {
            self.get_i64("node.id")
        };
        i32::try_from(id).unwrap_or(1)
    }

    /// The cluster-wide default of a topic key and where it comes from: the
    /// first broker synonym set in any layer (its most specific layer,
    /// converted to the topic key's unit), else Kafka's default.
    pub fn topic_default(&self, def: &TopicConfigDef) -> (Option<String>, ConfigSource) {
        for synonym in def.broker_synonyms {
            if let Some((value, source)) = self.explicit_lookup(synonym) {
                return (Some(to_topic_unit(synonym, value)), source);
            }
        }
        (def.def.default.map(str::to_owned), ConfigSource::Default)
    }

    /// The values of a topic key's broker synonyms, layer by layer (dynamic
    /// per-broker, dynamic default, static, built-in default) and, within a
    /// layer, most specific synonym first: DescribeConfigs' synonym list.
    pub fn broker_synonym_values(
        &self,
        synonyms: &[&str],
    ) -> Vec<(String, Option<String>, ConfigSource)> {
        let mut values = Vec::new();
        for (source, layer) in self.layers() {
            for key in synonyms {
                if let Some(v) = layer.get(*key) {
                    values.push(((*key).to_owned(), Some(v.clone()), source));
                }
            }
        }
        for key in synonyms {
            if let Some(v) = broker_def(key).and_then(|d| d.def.default) {
                values.push(((*key).to_owned(), Some(v.to_owned()), ConfigSource::Default));
            }
        }
        values
    }

    /// The effective value of a topic key for a topic with `overrides`.
    pub fn topic_value(&self, overrides: &BTreeMap<String, String>, key: &str) -> Option<String> {
        if let Some(v) = overrides.get(key) {
            return Some(v.clone());
        }
        topic_def(key).and_then(|def| self.topic_default(def).0)
    }
}

/// Checks a topic-level key and value, as CreateTopics and AlterConfigs do.
///
/// # Errors
/// Kafka's message for an unknown key or a bad value (mapped to INVALID_CONFIG).
pub fn validate_topic_config(key: &str, value: &str) -> Result<(), String> {
    match topic_def(key) {
        Some(def) => def.def.validate(value),
        None => Err(format!("Unknown topic config name: {key}")),
    }
}

/// Splits `key=value` or `key: value` at the first separator.
pub fn split_assignment(line: &str) -> Option<(&str, &str)> {
    let at = line.find(['=', ':'])?;
    let key = line[..at].trim();
    (!key.is_empty()).then(|| (key, line[at + 1..].trim()))
}

/// A listener address to bind: an empty host means every interface.
fn bind_form(address: &str) -> String {
    if address.starts_with(':') {
        format!("0.0.0.0{address}")
    } else {
        address.to_owned()
    }
}

/// Converts a broker key's value to milliseconds where the key is in hours or minutes.
fn to_topic_unit(broker_key: &str, value: &str) -> String {
    let factor = if broker_key.ends_with(".hours") {
        3_600_000
    } else if broker_key.ends_with(".minutes") {
        60_000
    } else {
        return value.to_owned();
    };
    value
        .parse::<i64>()
        .map(|v| v.saturating_mul(factor).to_string())
        .unwrap_or_else(|_| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_and_precedence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.properties");
        std::fs::write(
            &path,
            "# comment\nlisteners=PLAINTEXT://:9093\nlog.retention.hours=1\nnum.partitions: 3\n",
        )
        .unwrap();
        let mut config = BrokerConfig::new();
        config.load_file(&path).unwrap();
        assert_eq!(config.client_listeners().unwrap()[0].bind, "0.0.0.0:9093");
        assert_eq!(config.get_i64("num.partitions"), 3);
        let retention = topic_def("retention.ms").unwrap();
        assert_eq!(
            config.topic_default(retention),
            (Some("3600000".to_owned()), ConfigSource::StaticBroker)
        );
        config.set("log.retention.ms", "5", "--set").unwrap();
        config
            .set(
                "listener.name.external.ssl.keystore.type",
                "PKCS12",
                "--set",
            )
            .unwrap();
        assert_eq!(config.topic_default(retention).0.as_deref(), Some("5"));
    }

    #[test]
    fn rejects_unknown_keys_and_bad_values() {
        let mut config = BrokerConfig::new();
        assert!(matches!(
            config.set("no.such.key", "1", "--set"),
            Err(ConfigError::UnknownKey { .. })
        ));
        assert!(matches!(
            config.set("num.partitions", "zero", "--set"),
            Err(ConfigError::InvalidValue { .. })
        ));
        assert!(validate_topic_config("cleanup.policy", "compact,delete").is_ok());
        assert!(validate_topic_config("cleanup.policy", "shred").is_err());
        assert!(validate_topic_config("segment.bytes", "10").is_err());
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(validate_topic_config("bogus", "1").is_err());
    }
}

/// What a node is (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roles {
    /// Broker and controller in one process (the default).
    Combined,
    /// A broker only: it fetches the metadata from the controllers.
    Broker,
    /// A controller only: a metadata quorum voter that serves no clients.
    Controller,
}
