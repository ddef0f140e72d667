//! Kafka's container environment conventions: a compose file written for
//! the `apache/kafka` or Confluent images (`KAFKA_` + the key in upper
//! snake case: `KAFKA_ADVERTISED_LISTENERS`) or for Bitnami's
//! (`KAFKA_CFG_ADVERTISED_LISTENERS`) configures strom unchanged.
//!
//! Names map to keys as those images map them: the prefix dropped, `___`
//! to `-`, `__` to `_`, `_` to `.`, lower case. When any `KAFKA_CFG_`
//! variable is set only those count (Bitnami's other `KAFKA_*` variables
//! are the image's own settings); otherwise every `KAFKA_*` variable
//! counts except the images' JVM, logging and launcher variables.

/// `KAFKA_*` variables that are no broker settings: the images' launcher,
/// JVM, log4j and JMX variables (the apache/kafka and Confluent images skip
/// the same ones).
const NOT_SETTINGS: &[&str] = &[
    "KAFKA_VERSION",
    "KAFKA_HOME",
    "KAFKA_OPTS",
    "KAFKA_HEAP_OPTS",
    "KAFKA_JVM_PERFORMANCE_OPTS",
    "KAFKA_GC_LOG_OPTS",
    "KAFKA_LOG4J_OPTS",
    "KAFKA_LOG4J_LOGGERS",
    "KAFKA_LOG4J_ROOT_LOGLEVEL",
    "KAFKA_TOOLS_LOG4J_LOGLEVEL",
    "KAFKA_JMX_OPTS",
    "KAFKA_JMX_PORT",
    "KAFKA_JMX_HOSTNAME",
    "KAFKA_DEBUG",
    "KAFKA_DEBUG_SUSPEND_FLAG",
    "KAFKA_CLUSTER_ID",
    "KAFKA_LOG_DIR",
    "KAFKA_SERVER_PROPERTIES",
];

/// One setting taken from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSetting {
    /// The Kafka key.
    pub key: String,
    /// Its value.
    pub value: String,
    /// The variable it came from.
    pub variable: String,
}

/// The settings `vars` (the process environment) hold under Kafka's
/// container conventions, sorted by key.
pub fn container_settings(vars: impl IntoIterator<Item = (String, String)>) -> Vec<EnvSetting> {
    let vars: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with("KAFKA_"))
        .collect();
    let bitnami = vars.iter().any(|(name, _)| name.starts_with("KAFKA_CFG_"));
    let mut settings: Vec<EnvSetting> = vars
        .into_iter()
        .filter_map(|(variable, value)| {
            let rest = if bitnami {
                variable.strip_prefix("KAFKA_CFG_")?
            } else if NOT_SETTINGS.contains(&variable.as_str()) {
                return None;
            } else {
                variable.strip_prefix("KAFKA_")?
            };
            if rest.is_empty() {
                return None;
            }
            Some(EnvSetting {
                key: key_of(rest),
                value,
                variable,
            })
        })
        .collect();
    settings.sort_by(|a, b| a.key.cmp(&b.key));
    settings
}

/// `ADVERTISED_LISTENERS` → `advertised.listeners`; `___` is `-`, `__` is `_`.
fn key_of(name: &str) -> String {
    name.to_ascii_lowercase()
        .replace("___", "\u{0}")
        .replace("__", "\u{1}")
        .replace('_', ".")
        .replace('\u{0}', "-")
        .replace('\u{1}', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn apache_and_confluent_names() {
        let settings = container_settings(vars(&[
            ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://kafka:9092"),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1"),
            (
                "KAFKA_LISTENER_NAME_INTERNAL_SCRAM___SHA___512_SASL_JAAS_CONFIG",
                "x",
            ),
            ("KAFKA_CONFLUENT__KEY", "y"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("KAFKA_", "nothing"),
            ("PATH", "/bin"),
        ]));
        let keys: Vec<&str> = settings.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "advertised.listeners",
                "confluent_key",
                "listener.name.internal.scram-sha-512.sasl.jaas.config",
                "offsets.topic.replication.factor",
            ]
        );
        assert_eq!(settings[0].variable, "KAFKA_ADVERTISED_LISTENERS");
        assert_eq!(settings[0].value, "PLAINTEXT://kafka:9092");
    }

    #[test]
    fn bitnami_names_only_when_present() {
        let settings = container_settings(vars(&[
            ("KAFKA_CFG_NUM_PARTITIONS", "3"),
            ("KAFKA_KRAFT_CLUSTER_ID", "abc"),
            ("KAFKA_CLIENT_USERS", "alice"),
        ]));
        assert_eq!(
            settings,
            [EnvSetting {
                key: "num.partitions".into(),
                value: "3".into(),
                variable: "KAFKA_CFG_NUM_PARTITIONS".into(),
            }]
        );
    }
}
