//! The tables of every configuration key strom knows, with Kafka's names,
//! types, defaults and validity rules. DescribeConfigs, CreateTopics,
//! AlterConfigs and the `--config`/`--set` parser all read these tables, so
//! a key is declared exactly once.

/// Kafka's config types, numbered as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` or `false`.
    Boolean = 1,
    /// Free text.
    String = 2,
    /// A 32-bit signed integer.
    Int = 3,
    /// A 16-bit signed integer.
    Short = 4,
    /// A 64-bit signed integer.
    Long = 5,
    /// A floating point number.
    Double = 6,
    /// A comma-separated list.
    List = 7,
    /// A Java class name.
    Class = 8,
    /// A secret: DescribeConfigs reports it as sensitive, without its value.
    Password = 9,
}

/// What values a key accepts beyond its type.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// Any value of the type.
    Any,
    /// A number at least this large.
    AtLeast(i64),
    /// A number in this inclusive range.
    Between(i64, i64),
    /// A number in the range, or exactly the extra value (e.g. -1 for "default").
    BetweenOr(i64, i64, i64),
    /// A double in this inclusive range.
    Fraction(f64, f64),
    /// One of these strings (case-sensitive, as Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// A list whose every item is one of these strings.
    ListOf(&'static [&'static str]),
}

/// One configuration key.
#[derive(Debug)]
pub struct ConfigDef {
    /// Kafka's name for the key.
    pub name: &'static str,
    /// The value's type.
    pub kind: ConfigType,
    /// The default as Kafka prints it; `None` where Kafka's default is null.
    pub default: Option<&'static str>,
    /// Extra rules for the value.
    pub validity: Validity,
    /// One line of documentation (DescribeConfigs v3+ `documentation`).
    pub doc: &'static str,
}

impl ConfigDef {
    /// Checks `value` against the key's type and rules.
    ///
    /// # Errors
    /// A message in Kafka's words ("Invalid value x for configuration y: ...").
    pub fn validate(&self, value: &str) -> Result<(), String> {
        let bad = |why: &str| {
            Err(format!(
                "Invalid value {value} for configuration {}: {why}",
                self.name
            ))
        };
        let trimmed = value.trim();
        match self.kind {
            ConfigType::Boolean => {
                if !trimmed.eq_ignore_ascii_case("true") && !trimmed.eq_ignore_ascii_case("false") {
                    return bad("Expected value to be either true or false");
                }
            }
            ConfigType::Int | ConfigType::Short | ConfigType::Long => {
                let parsed = match self.kind {
                    ConfigType::Int => trimmed.parse::<i32>().map(i64::from).ok(),
                    ConfigType::Short => trimmed.parse::<i16>().map(i64::from).ok(),
                    _ => trimmed.parse::<i64>().ok(),
                };
                let Some(n) = parsed else {
                    return bad(type_name(self.kind));
                };
                match self.validity {
                    Validity::AtLeast(min) if n < min => {
                        return bad(&format!("Value must be at least {min}"))
                    }
                    Validity::Between(lo, hi) if n < lo || n > hi => {
                        return bad(&format!("Value must be in the range [{lo}, {hi}]"))
                    }
                    Validity::BetweenOr(lo, hi, extra) if (n < lo || n > hi) && n != extra => {
                        return bad(&format!(
                            "Value must be {extra} or in the range [{lo}, {hi}]"
                        ))
                    }
                    _ => {}
                }
            }
            ConfigType::Double => {
                let Ok(x) = trimmed.parse::<f64>() else {
                    return bad("Not a number of type DOUBLE");
                };
                if let Validity::Fraction(lo, hi) = self.validity {
                    if !(lo..=hi).contains(&x) {
                        return bad(&format!("Value must be in the range [{lo}, {hi}]"));
                    }
                }
            }
            ConfigType::String => {
                if let Validity::OneOf(allowed) = self.validity {
                    if !allowed.contains(&trimmed) {
                        return bad(&format!("String must be one of: {}", allowed.join(", ")));
                    }
                }
            }
            ConfigType::List => {
                if let Validity::ListOf(allowed) = self.validity {
                    for item in trimmed.split(',').map(str::trim) {
                        if !allowed.contains(&item) {
                            return bad(&format!(
                                "List items must be one of: {}",
                                allowed.join(", ")
                            ));
                        }
                    }
                }
            }
            ConfigType::Class | ConfigType::Password => {}
        }
        Ok(())
    }
}

fn type_name(kind: ConfigType) -> &'static str {
    match kind {
        ConfigType::Int => "Not a number of type INT",
        ConfigType::Short => "Not a number of type SHORT",
        _ => "Not a number of type LONG",
    }
}

/// A topic-level key and the broker-level keys that supply its default,
/// in Kafka's precedence order (e.g. `log.retention.ms` before `.hours`).
#[derive(Debug)]
pub struct TopicConfigDef {
    /// The key and its rules.
    pub def: ConfigDef,
    /// Broker keys that set the cluster-wide default, most specific first.
    pub broker_synonyms: &'static [&'static str],
}

const I64_MAX: &str = "9223372036854775807";

macro_rules! def {
    ($name:expr, $kind:ident, $default:expr, $validity:expr, $doc:expr) => {
        ConfigDef {
            name: $name,
            kind: ConfigType::$kind,
            default: $default,
            validity: $validity,
            doc: $doc,
        }
    };
}

macro_rules! topic {
    ($name:expr, $kind:ident, $default:expr, $validity:expr, [$($syn:expr),*], $doc:expr) => {
        TopicConfigDef {
            def: def!($name, $kind, $default, $validity, $doc),
            broker_synonyms: &[$($syn),*],
        }
    };
}

const COMPRESSION_TYPES: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const CLEANUP_POLICIES: &[&str] = &["compact", "delete"];
const TIMESTAMP_TYPES: &[&str] = &["CreateTime", "LogAppendTime"];

/// Every topic-level config Apache Kafka 4.1 reports for a topic, in its order.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    topic!(
        "cleanup.policy",
        List,
        Some("delete"),
        Validity::ListOf(CLEANUP_POLICIES),
        ["log.cleanup.policy"],
        "The retention policy to use on log segments: delete or compact."
    ),
    topic!(
        "compression.gzip.level",
        Int,
        Some("-1"),
        Validity::BetweenOr(1, 9, -1),
        ["compression.gzip.level"],
        "The compression level to use if compression.type is set to gzip."
    ),
    topic!(
        "compression.lz4.level",
        Int,
        Some("9"),
        Validity::Between(1, 17),
        ["compression.lz4.level"],
        "The compression level to use if compression.type is set to lz4."
    ),
    topic!(
        "compression.type",
        String,
        Some("producer"),
        Validity::OneOf(COMPRESSION_TYPES),
        ["compression.type"],
        "The final compression type for a given topic."
    ),
    topic!(
        "compression.zstd.level",
        Int,
        Some("3"),
        Validity::Between(-131072, 22),
        ["compression.zstd.level"],
        "The compression level to use if compression.type is set to zstd."
    ),
    topic!(
        "delete.retention.ms",
        Long,
        Some("86400000"),
        Validity::AtLeast(0),
        ["log.cleaner.delete.retention.ms"],
        "How long delete tombstones are retained for log compacted topics."
    ),
    topic!(
        "file.delete.delay.ms",
        Long,
        Some("60000"),
        Validity::AtLeast(0),
        ["log.segment.delete.delay.ms"],
        "The time to wait before deleting a file from the filesystem."
    ),
    topic!(
        "flush.messages",
        Long,
        Some(I64_MAX),
        Validity::AtLeast(1),
        ["log.flush.interval.messages"],
        "Messages accumulated on a log partition before they are fsynced."
    ),
    topic!(
        "flush.ms",
        Long,
        Some(I64_MAX),
        Validity::AtLeast(0),
        ["log.flush.interval.ms"],
        "The time after which an fsync of the log is forced."
    ),
    topic!(
        "follower.replication.throttled.replicas",
        List,
        Some(""),
        Validity::Any,
        [],
        "Replicas for which log replication should be throttled on the follower side."
    ),
    topic!(
        "index.interval.bytes",
        Int,
        Some("4096"),
        Validity::AtLeast(0),
        ["log.index.interval.bytes"],
        "How frequently an entry is added to the offset index."
    ),
    topic!(
        "leader.replication.throttled.replicas",
        List,
        Some(""),
        Validity::Any,
        [],
        "Replicas for which log replication should be throttled on the leader side."
    ),
    topic!(
        "local.retention.bytes",
        Long,
        Some("-2"),
        Validity::AtLeast(-2),
        ["log.local.retention.bytes"],
        "The maximum size local log segments can grow to before they are deleted."
    ),
    topic!(
        "local.retention.ms",
        Long,
        Some("-2"),
        Validity::AtLeast(-2),
        ["log.local.retention.ms"],
        "How long a local log segment is retained before it is deleted."
    ),
    topic!(
        "max.compaction.lag.ms",
        Long,
        Some(I64_MAX),
        Validity::AtLeast(1),
        ["log.cleaner.max.compaction.lag.ms"],
        "The maximum time a message remains ineligible for compaction."
    ),
    topic!(
        "max.message.bytes",
        Int,
        Some("1048588"),
        Validity::AtLeast(0),
        ["message.max.bytes"],
        "The largest record batch size allowed."
    ),
    topic!(
        "message.timestamp.after.max.ms",
        Long,
        Some("3600000"),
        Validity::AtLeast(0),
        ["log.message.timestamp.after.max.ms"],
        "How far a message timestamp may be ahead of the broker's time."
    ),
    topic!(
        "message.timestamp.before.max.ms",
        Long,
        Some(I64_MAX),
        Validity::AtLeast(0),
        ["log.message.timestamp.before.max.ms"],
        "How far a message timestamp may be behind the broker's time."
    ),
    topic!(
        "message.timestamp.type",
        String,
        Some("CreateTime"),
        Validity::OneOf(TIMESTAMP_TYPES),
        ["log.message.timestamp.type"],
        "Whether the timestamp is the message create time or the log append time."
    ),
    topic!(
        "min.cleanable.dirty.ratio",
        Double,
        Some("0.5"),
        Validity::Fraction(0.0, 1.0),
        ["log.cleaner.min.cleanable.ratio"],
        "How frequently the log compactor attempts to clean the log."
    ),
    topic!(
        "min.compaction.lag.ms",
        Long,
        Some("0"),
        Validity::AtLeast(0),
        ["log.cleaner.min.compaction.lag.ms"],
        "The minimum time a message remains uncompacted."
    ),
    topic!(
        "min.insync.replicas",
        Int,
        Some("1"),
        Validity::AtLeast(1),
        ["min.insync.replicas"],
        "The minimum number of replicas that must acknowledge a write with acks=all."
    ),
    topic!(
        "preallocate",
        Boolean,
        Some("false"),
        Validity::Any,
        ["log.preallocate"],
        "Whether to preallocate the file on disk when creating a new log segment."
    ),
    topic!(
        "remote.log.copy.disable",
        Boolean,
        Some("false"),
        Validity::Any,
        [],
        "Whether to stop copying segments to remote storage."
    ),
    topic!(
        "remote.log.delete.on.disable",
        Boolean,
        Some("false"),
        Validity::Any,
        [],
        "Whether to delete remote data when tiered storage is turned off."
    ),
    topic!(
        "remote.storage.enable",
        Boolean,
        Some("false"),
        Validity::Any,
        [],
        "Whether tiered storage is enabled for the topic."
    ),
    topic!(
        "retention.bytes",
        Long,
        Some("-1"),
        Validity::Any,
        ["log.retention.bytes"],
        "The maximum size a partition can grow to before old segments are deleted."
    ),
    topic!(
        "retention.ms",
        Long,
        Some("604800000"),
        Validity::AtLeast(-1),
        [
            "log.retention.ms",
            "log.retention.minutes",
            "log.retention.hours"
        ],
        "The maximum time a log is retained before old segments are deleted."
    ),
    topic!(
        "segment.bytes",
        Int,
        Some("1073741824"),
        Validity::AtLeast(1048576),
        ["log.segment.bytes"],
        "The segment file size for the log."
    ),
    topic!(
        "segment.index.bytes",
        Int,
        Some("10485760"),
        Validity::AtLeast(4),
        ["log.index.size.max.bytes"],
        "The size of the index that maps offsets to file positions."
    ),
    topic!(
        "segment.jitter.ms",
        Long,
        Some("0"),
        Validity::AtLeast(0),
        ["log.roll.jitter.ms", "log.roll.jitter.hours"],
        "The maximum random jitter subtracted from the segment roll time."
    ),
    topic!(
        "segment.ms",
        Long,
        Some("604800000"),
        Validity::AtLeast(1),
        ["log.roll.ms", "log.roll.hours"],
        "The period after which the log rolls even if the segment is not full."
    ),
    topic!(
        "unclean.leader.election.enable",
        Boolean,
        Some("false"),
        Validity::Any,
        ["unclean.leader.election.enable"],
        "Whether out-of-sync replicas may be elected leader."
    ),
];

/// Looks up a topic-level key.
pub fn topic_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.def.name == name)
}
