//! CreateTopics (key 19) at v2 and v7 (and the versions between for the
//! success case): per-topic error codes for every way a request can be
//! wrong (TOPIC_ALREADY_EXISTS, INVALID_REPLICATION_FACTOR,
//! INVALID_PARTITIONS, INVALID_CONFIG, INVALID_TOPIC_EXCEPTION,
//! INVALID_REQUEST, INVALID_REPLICA_ASSIGNMENT), `validate_only` creating
//! nothing, and the v5+/v7 result fields of a good create.

use kafka_protocol::messages::create_topics_request::{
    CreatableReplicaAssignment, CreatableTopic, CreatableTopicConfig,
};
use kafka_protocol::messages::create_topics_response::CreatableTopicResult;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, MetadataRequest, MetadataResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::support::{Client, TestBroker};

/// The oldest and newest served versions.
const VERSIONS: &[i16] = &[2, 7];

fn topic(name: &str, partitions: i32, replication: i16) -> CreatableTopic {
    CreatableTopic::default()
        .with_name(TopicName(StrBytes::from_string(name.to_owned())))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
}

fn with_config(topic: CreatableTopic, key: &str, value: &str) -> CreatableTopic {
    let mut configs = topic.configs.clone();
    configs.push(
        CreatableTopicConfig::default()
            .with_name(StrBytes::from_string(key.to_owned()))
            .with_value(Some(StrBytes::from_string(value.to_owned()))),
    );
    topic.with_configs(configs)
}

fn assigned(name: &str, replicas: &[&[i32]]) -> CreatableTopic {
    let assignments = replicas
        .iter()
        .enumerate()
        .map(|(i, brokers)| {
            CreatableReplicaAssignment::default()
                .with_partition_index(i32::try_from(i).expect("index"))
                .with_broker_ids(brokers.iter().copied().map(BrokerId).collect())
        })
        .collect();
    topic(name, -1, -1).with_assignments(assignments)
}

fn create_request(topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsRequest {
    CreateTopicsRequest::default()
        .with_topics(topics)
        .with_timeout_ms(30_000)
        .with_validate_only(validate_only)
}

async fn create(
    client: &mut Client,
    version: i16,
    topics: Vec<CreatableTopic>,
    validate_only: bool,
) -> CreateTopicsResponse {
    client
        .request(
            ApiKey::CreateTopics,
            version,
            &create_request(topics, validate_only),
        )
        .await
}

/// Metadata v12 for `name` without auto-creation.
async fn lookup(client: &mut Client, name: &str) -> MetadataResponse {
    let request = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))]))
        .with_allow_auto_topic_creation(false);
    client.request(ApiKey::Metadata, 12, &request).await
}

fn result<'a>(response: &'a CreateTopicsResponse, name: &str) -> &'a CreatableTopicResult {
    response
        .topics
        .iter()
        .find(|t| t.name.0.as_str() == name)
        .unwrap_or_else(|| panic!("no result for {name}: {response:?}"))
}

/// One rejected create: what it is, the topics to send, and the error code
/// every topic of the request must get.
struct ErrorCase {
    what: &'static str,
    topics: fn(&str) -> Vec<CreatableTopic>,
    code: i16,
}

const ERROR_CASES: &[ErrorCase] = &[
    ErrorCase {
        what: "replication factor 3 with one broker",
        topics: |n| vec![topic(n, 1, 3)],
        code: 38,
    },
    ErrorCase {
        what: "replication factor 0",
        topics: |n| vec![topic(n, 1, 0)],
        code: 38,
    },
    ErrorCase {
        what: "zero partitions",
        topics: |n| vec![topic(n, 0, 1)],
        code: 37,
    },
    ErrorCase {
        what: "negative partitions other than -1",
        topics: |n| vec![topic(n, -5, 1)],
        code: 37,
    },
    ErrorCase {
        what: "unknown config key",
        topics: |n| vec![with_config(topic(n, 1, 1), "no.such.config", "1")],
        code: 40,
    },
    ErrorCase {
        what: "bad config value cleanup.policy=shred",
        topics: |n| vec![with_config(topic(n, 1, 1), "cleanup.policy", "shred")],
        code: 40,
    },
    ErrorCase {
        what: "bad config value retention.ms=soon",
        topics: |n| vec![with_config(topic(n, 1, 1), "retention.ms", "soon")],
        code: 40,
    },
    ErrorCase {
        what: "same name twice in one request",
        topics: |n| vec![topic(n, 1, 1), topic(n, 2, 1)],
        code: 42,
    },
    ErrorCase {
        what: "more partitions than Kafka's controller takes in one request",
        topics: |n| vec![topic(n, 2_000_000_000, 1)],
        code: 44,
    },
    ErrorCase {
        what: "manual assignment naming broker 7",
        topics: |n| vec![assigned(n, &[&[7]])],
        code: 39,
    },
    ErrorCase {
        what: "manual assignment with a duplicate replica",
        topics: |n| vec![assigned(n, &[&[1, 1]])],
        code: 39,
    },
];

#[tokio::test]
async fn errors_per_topic() {
    for &version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut client = broker.connect().await;
        for (i, case) in ERROR_CASES.iter().enumerate() {
            let name = format!("bad-{i}-v{version}");
            let topics = (case.topics)(&name);
            let sent = topics.len();
            let response = create(&mut client, version, topics, false).await;
            assert_eq!(
                response.topics.len(),
                sent,
                "v{version} {}: results",
                case.what
            );
            for result in &response.topics {
                assert_eq!(
                    result.name.0.as_str(),
                    name,
                    "v{version} {}: name",
                    case.what
                );
                assert_eq!(
                    result.error_code, case.code,
                    "v{version} {}: error code ({:?})",
                    case.what, result.error_message
                );
            }
            let absent = lookup(&mut client, &name).await;
            assert_eq!(
                absent.topics.first().map(|t| t.error_code),
                Some(3),
                "v{version} {}: the topic must not exist",
                case.what
            );
        }
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn invalid_topic_names() {
    for &version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut client = broker.connect().await;
        let long = "x".repeat(250);
        for bad in ["bad name!", "", ".", "..", long.as_str()] {
            let response = create(&mut client, version, vec![topic(bad, 1, 1)], false).await;
            assert_eq!(
                result(&response, bad).error_code,
                17,
                "v{version} {bad:?}: INVALID_TOPIC_EXCEPTION"
            );
        }
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn topic_already_exists() {
    for &version in VERSIONS {
        let broker = TestBroker::start().await;
        let mut client = broker.connect().await;
        let first = create(&mut client, version, vec![topic("twice", 2, 1)], false).await;
        assert_eq!(
            result(&first, "twice").error_code,
            0,
            "v{version} first create"
        );
        let second = create(&mut client, version, vec![topic("twice", 2, 1)], false).await;
        assert_eq!(
            result(&second, "twice").error_code,
            36,
            "v{version} TOPIC_ALREADY_EXISTS"
        );
        // A topic made by Metadata auto-creation exists just the same.
        let auto = client
            .request::<_, MetadataResponse>(
                ApiKey::Metadata,
                12,
                &MetadataRequest::default()
                    .with_topics(Some(vec![MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_static_str("auto-made"))))]))
                    .with_allow_auto_topic_creation(true),
            )
            .await;
        assert_eq!(auto.topics[0].error_code, 0, "v{version} auto-create");
        let third = create(&mut client, version, vec![topic("auto-made", 1, 1)], false).await;
        assert_eq!(
            result(&third, "auto-made").error_code,
            36,
            "v{version} after auto-create"
        );
        // Mixed request: one good, one existing; each gets its own code.
        let mixed = create(
            &mut client,
            version,
            vec![topic("twice", 1, 1), topic("fresh", 1, 1)],
            false,
        )
        .await;
        assert_eq!(
            result(&mixed, "twice").error_code,
            36,
            "v{version} mixed existing"
        );
        assert_eq!(
            result(&mixed, "fresh").error_code,
            0,
            "v{version} mixed fresh"
        );
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn validate_only_creates_nothing() {
    for &version in VERSIONS {
        let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
        let mut client = broker.connect().await;
        let response = create(
            &mut client,
            version,
            vec![with_config(topic("dry-run", 4, 1), "retention.ms", "1000")],
            true,
        )
        .await;
        assert_eq!(
            result(&response, "dry-run").error_code,
            0,
            "v{version} validate"
        );
        let metadata = lookup(&mut client, "dry-run").await;
        assert_eq!(
            metadata.topics[0].error_code, 3,
            "v{version}: validate_only created the topic"
        );
        // Validation still applies: a bad request fails without creating.
        let bad = create(&mut client, version, vec![topic("dry-run", 0, 1)], true).await;
        assert_eq!(
            result(&bad, "dry-run").error_code,
            37,
            "v{version} validate bad"
        );
        // And a real create afterwards works (the name was not reserved).
        let real = create(&mut client, version, vec![topic("dry-run", 4, 1)], false).await;
        assert_eq!(
            result(&real, "dry-run").error_code,
            0,
            "v{version} real create"
        );
        let metadata = lookup(&mut client, "dry-run").await;
        assert_eq!(metadata.topics[0].error_code, 0, "v{version} exists now");
        assert_eq!(
            metadata.topics[0].partitions.len(),
            4,
            "v{version} partitions"
        );
        broker.shutdown().await;
    }
}

#[tokio::test]
async fn good_create_reports_the_topic() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for version in 2..=7 {
        let name = format!("good-v{version}");
        let request = with_config(topic(&name, 3, 1), "retention.ms", "123456");
        let response = create(&mut client, version, vec![request], false).await;
        let created = result(&response, &name);
        assert_eq!(
            created.error_code, 0,
            "v{version}: {:?}",
            created.error_message
        );
        if version >= 5 {
            assert_eq!(created.num_partitions, 3, "v{version} num_partitions");
            assert_eq!(
                created.replication_factor, 1,
                "v{version} replication_factor"
            );
            let configs = created
                .configs
                .as_ref()
                .unwrap_or_else(|| panic!("v{version}: no config list"));
            let retention = configs
                .iter()
                .find(|c| c.name.as_str() == "retention.ms")
                .unwrap_or_else(|| panic!("v{version}: retention.ms missing"));
            assert_eq!(
                retention.value.as_ref().map(|v| v.as_str()),
                Some("123456"),
                "v{version} retention.ms value"
            );
            assert!(
                configs.iter().any(|c| c.name.as_str() == "cleanup.policy"),
                "v{version}: cleanup.policy missing"
            );
        }
        let metadata = lookup(&mut client, &name).await;
        let topic = &metadata.topics[0];
        assert_eq!(topic.error_code, 0, "v{version} metadata");
        assert_eq!(topic.partitions.len(), 3, "v{version} partitions");
        for p in &topic.partitions {
            assert_eq!(p.leader_id, BrokerId(1), "v{version} leader");
            assert_eq!(p.replica_nodes, vec![BrokerId(1)], "v{version} replicas");
        }
        if version >= 7 {
            assert!(!created.topic_id.is_nil(), "v{version}: nil topic id");
            assert_eq!(
                created.topic_id, topic.topic_id,
                "v{version}: id as Metadata"
            );
        }
    }
    // Defaults (-1, -1) use num.partitions and default.replication.factor.
    let response = create(&mut client, 7, vec![topic("defaults", -1, -1)], false).await;
    let created = result(&response, "defaults");
    assert_eq!(
        created.error_code, 0,
        "defaults: {:?}",
        created.error_message
    );
    assert_eq!(created.num_partitions, 1, "default num.partitions");
    assert_eq!(created.replication_factor, 1, "default replication factor");
    // A valid manual assignment works.
    let response = create(
        &mut client,
        7,
        vec![assigned("manual", &[&[1], &[1]])],
        false,
    )
    .await;
    let created = result(&response, "manual");
    assert_eq!(created.error_code, 0, "manual: {:?}", created.error_message);
    assert_eq!(created.num_partitions, 2, "manual partitions");
    broker.shutdown().await;
}

#[tokio::test]
async fn names_colliding_on_dot_and_underscore_are_refused() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let response = create(&mut client, 7, vec![topic("metrics.in", 1, 1)], false).await;
    assert_eq!(result(&response, "metrics.in").error_code, 0);
    for validate_only in [true, false] {
        let response = create(
            &mut client,
            7,
            vec![topic("metrics_in", 1, 1)],
            validate_only,
        )
        .await;
        let refused = result(&response, "metrics_in");
        assert_eq!(refused.error_code, 17, "validate_only={validate_only}");
        assert_eq!(
            refused.error_message.as_deref(),
            Some("Topic 'metrics_in' collides with existing topic: metrics.in")
        );
    }
    broker.shutdown().await;
}
