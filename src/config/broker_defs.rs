//! Every broker-level key of Apache Kafka 4.1, loaded once from the table
//! `kafka-broker-configs.tsv` next to this file (name, type, default, update
//! mode, validator, documentation). The table is data rather than code so it
//! can be compared line by line with Kafka's generated broker config docs.

use std::sync::OnceLock;

use super::defs::{ConfigDef, ConfigType, Validity};

/// How a broker key can change while the broker runs (Kafka's "Update Mode").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// Only in `server.properties` / on the command line; needs a restart.
    ReadOnly,
    /// Dynamically, for one broker at a time (`--entity-name <id>`).
    PerBroker,
    /// Dynamically, for one broker or as the cluster-wide default.
    ClusterWide,
}

/// One broker-level key: its definition and how it may be updated.
#[derive(Debug)]
pub struct BrokerConfigDef {
    /// The key and its rules.
    pub def: ConfigDef,
    /// Whether and where AlterConfigs may change it.
    pub mode: UpdateMode,
}

const TABLE: &str = include_str!("kafka-broker-configs.tsv");

/// Every broker key, in the table's (alphabetical) order.
pub fn broker_configs() -> &'static [BrokerConfigDef] {
    static DEFS: OnceLock<Vec<BrokerConfigDef>> = OnceLock::new();
    DEFS.get_or_init(|| TABLE.lines().filter_map(parse_line).collect())
}

/// Looks up a broker-level key.
pub fn broker_def(name: &str) -> Option<&'static BrokerConfigDef> {
    let defs = broker_configs();
    defs.binary_search_by(|d| d.def.name.cmp(name))
        .ok()
        .map(|at| &defs[at])
}

/// Kafka's listener keys that may be set cluster-wide even with a listener
/// prefix (`DynamicBrokerConfig.ClusterLevelListenerConfigs`).
const CLUSTER_LEVEL_LISTENER_CONFIGS: &[&str] = &[
    "max.connection.creation.rate",
    "max.connections",
    "num.network.threads",
];

/// The key under a listener prefix: `listener.name.<listener>.<key>` → `<key>`.
pub fn listener_base(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("listener.name.")?;
    let (_listener, base) = rest.split_once('.')?;
    // `listener.name.<listener>.<mechanism>.sasl.*` (and
    // `.connections.max.reauth.ms`): one SASL mechanism's own setting
    // (`...plain.sasl.jaas.config`).
    match base.split_once('.') {
        Some((_mechanism, sasl))
            if broker_def(base).is_none()
                && (sasl.starts_with("sasl.") || sasl == "connections.max.reauth.ms") =>
        {
            Some(sasl)
        }
        _ => Some(base),
    }
}

/// The definition that rules `key`: its own, else (for a listener-prefixed
/// key) the definition of the key under the prefix.
pub fn broker_def_for(key: &str) -> Option<&'static BrokerConfigDef> {
    broker_def(key).or_else(|| listener_base(key).and_then(broker_def))
}

/// How `key` may be updated: its own mode; a listener-prefixed key is
/// per-broker unless Kafka allows it cluster-wide; `None` for a custom key.
pub fn update_mode(key: &str) -> Option<UpdateMode> {
    if let Some(def) = broker_def(key) {
        return Some(def.mode);
    }
    let base = listener_base(key)?;
    Some(if CLUSTER_LEVEL_LISTENER_CONFIGS.contains(&base) {
        UpdateMode::ClusterWide
    } else {
        UpdateMode::PerBroker
    })
}

/// One table row; `None` for the header, comments and blank lines (a unit
/// test checks that every other line parses).
fn parse_line(line: &'static str) -> Option<BrokerConfigDef> {
    if line.is_empty() || line.starts_with('#') || line.starts_with("name\t") {
        return None;
    }
    let mut fields = line.split('\t');
    let name = fields.next()?;
    let kind = match fields.next()? {
        "BOOLEAN" => ConfigType::Boolean,
        "STRING" => ConfigType::String,
        "INT" => ConfigType::Int,
        "SHORT" => ConfigType::Short,
        "LONG" => ConfigType::Long,
        "DOUBLE" => ConfigType::Double,
        "LIST" => ConfigType::List,
        "CLASS" => ConfigType::Class,
        "PASSWORD" => ConfigType::Password,
        _ => return None,
    };
    let default = match fields.next()? {
        "NULL" => None,
        value => Some(value),
    };
    let mode = match fields.next()? {
        "read-only" => UpdateMode::ReadOnly,
        "per-broker" => UpdateMode::PerBroker,
        "cluster-wide" => UpdateMode::ClusterWide,
        _ => return None,
    };
    let validity = parse_validity(fields.next()?, kind)?;
    let doc = fields.next()?;
    Some(BrokerConfigDef {
        def: ConfigDef {
            name,
            kind,
            default,
            validity,
            doc,
        },
        mode,
    })
}

/// `-`, `atleast:N`, `between:LO:HI`, `betweenor:LO:HI:X`, `oneof:a|b`,
/// `listof:a|b`, or `other:<text>` (a validator strom does not apply).
fn parse_validity(text: &'static str, kind: ConfigType) -> Option<Validity> {
    let (rule, args) = text.split_once(':').unwrap_or((text, ""));
    let numbers = || -> Option<Vec<i64>> { args.split(':').map(|n| n.parse().ok()).collect() };
    let words = || -> &'static [&'static str] { Box::leak(args.split('|').collect::<Box<[_]>>()) };
    Some(match rule {
        "-" | "other" => Validity::Any,
        "atleast" => Validity::AtLeast(*numbers()?.first()?),
        "between" if kind == ConfigType::Double => {
            let (lo, hi) = args.split_once(':')?;
            Validity::Fraction(lo.parse().ok()?, hi.parse().ok()?)
        }
        "between" => match numbers()?[..] {
            [lo, hi] => Validity::Between(lo, hi),
            _ => return None,
        },
        "betweenor" => match numbers()?[..] {
            [lo, hi, extra] => Validity::BetweenOr(lo, hi, extra),
            _ => return None,
        },
        "oneof" => Validity::OneOf(words()),
        "listof" => Validity::ListOf(words()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_parses_and_names_are_sorted_and_unique() {
        let rows = TABLE
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("name\t"))
            .count();
        let defs = broker_configs();
        assert_eq!(defs.len(), rows, "a row of the table does not parse");
        assert!(defs.len() > 200);
        assert!(defs.windows(2).all(|w| w[0].def.name < w[1].def.name));
    }

    #[test]
    fn lookups_and_rules() {
        let retention = broker_def("log.retention.hours").unwrap();
        assert_eq!(retention.def.default, Some("168"));
        assert_eq!(retention.mode, UpdateMode::ReadOnly);
        assert_eq!(
            broker_def("log.retention.ms").unwrap().mode,
            UpdateMode::ClusterWide
        );
        assert_eq!(
            broker_def("sasl.kerberos.min.time.before.relogin")
                .unwrap()
                .mode,
            UpdateMode::PerBroker
        );
        assert!(broker_def("message.max.bytes")
            .unwrap()
            .def
            .validate("-1")
            .is_err());
        assert!(broker_def("log.cleanup.policy")
            .unwrap()
            .def
            .validate("shred")
            .is_err());
        assert!(broker_def("no.such.key").is_none());
        assert_eq!(
            listener_base("listener.name.ext.ssl.keystore.type"),
            Some("ssl.keystore.type")
        );
        assert_eq!(
            broker_def_for("listener.name.ext.ssl.keystore.password").map(|d| d.def.kind),
            Some(ConfigType::Password)
        );
        assert_eq!(
            update_mode("listener.name.ext.max.connections"),
            Some(UpdateMode::ClusterWide)
        );
        assert_eq!(
            update_mode("listener.name.ext.ssl.keystore.type"),
            Some(UpdateMode::PerBroker)
        );
        assert_eq!(update_mode("custom.key"), None);
    }
}
