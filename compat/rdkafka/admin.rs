//! The admin API and metadata through librdkafka: create, describe and
//! alter configs, grow, delete; the error codes Kafka gives.

use rdkafka::admin::{
    AlterConfig, ConfigEntry, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use crate::support::{options, TestBroker, DEADLINE};

fn metadata_partitions(broker: &TestBroker, topic: &str) -> Option<usize> {
    let consumer: BaseConsumer = broker.client_config().create().expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(topic), DEADLINE)
        .expect("metadata");
    let found = metadata.topics().iter().find(|t| t.name() == topic)?;
    found.error().is_none().then(|| found.partitions().len())
}

#[tokio::test(flavor = "multi_thread")]
async fn create_describe_grow_delete() {
    let broker = TestBroker::start(&[("auto.create.topics.enable", "false")]).await;
    let admin = broker.admin();

    let topic =
        NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "3600000");
    let created = admin
        .create_topics([&topic], &options())
        .await
        .expect("create");
    assert_eq!(created, vec![Ok("orders".to_owned())]);
    assert_eq!(metadata_partitions(&broker, "orders"), Some(3));

    let again = admin
        .create_topics([&topic], &options())
        .await
        .expect("create again");
    assert_eq!(
        again,
        vec![Err((
            "orders".to_owned(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );

    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("orders")], &options())
        .await
        .expect("describe");
    let resource = described[0].as_ref().expect("topic resource");
    let entries = resource.entry_map();
    let retention = entries["retention.ms"];
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let cleanup = entries["cleanup.policy"];
    assert_eq!(cleanup.value.as_deref(), Some("delete"));
    assert_eq!(cleanup.source, ConfigSource::Default);
    assert!(entries.len() >= 30, "only {} topic configs", entries.len());

    let alter =
        AlterConfig::new(ResourceSpecifier::Topic("orders")).set("cleanup.policy", "compact");
    let altered = admin
        .alter_configs([&alter], &options())
        .await
        .expect("alter");
    assert!(altered[0].is_ok(), "{altered:?}");
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("orders")], &options())
        .await
        .expect("describe");
    let entries = described[0]
        .as_ref()
        .expect("topic")
        .entry_map()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                (v.value.clone(), v.source == ConfigSource::DynamicTopic),
            )
        })
        .collect::<std::collections::HashMap<_, _>>();
    assert_eq!(
        entries["cleanup.policy"],
        (Some("compact".to_owned()), true)
    );
    // AlterConfigs replaces the whole override set: retention.ms is back to default.
    assert_eq!(
        entries["retention.ms"],
        (Some("604800000".to_owned()), false)
    );

    let grown = admin
        .create_partitions([&NewPartitions::new("orders", 5)], &options())
        .await
        .expect("grow");
    assert_eq!(grown, vec![Ok("orders".to_owned())]);
    assert_eq!(metadata_partitions(&broker, "orders"), Some(5));
    let shrink = admin
        .create_partitions([&NewPartitions::new("orders", 2)], &options())
        .await
        .expect("shrink");
    assert_eq!(
        shrink,
        vec![Err((
            "orders".to_owned(),
            RDKafkaErrorCode::InvalidPartitions
        ))]
    );

    let deleted = admin
        .delete_topics(&["orders"], &options())
        .await
        .expect("delete");
    assert_eq!(deleted, vec![Ok("orders".to_owned())]);
    assert_eq!(metadata_partitions(&broker, "orders"), None);
    assert!(
        !broker.dir.path().join("logs/orders-0").exists(),
        "data left on disk"
    );
    let missing = admin
        .delete_topics(&["orders"], &options())
        .await
        .expect("delete again");
    assert_eq!(
        missing,
        vec![Err((
            "orders".to_owned(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn create_topic_errors() {
    let broker = TestBroker::start(&[]).await;
    let admin = broker.admin();
    let cases = [
        (
            NewTopic::new("rf3", 1, TopicReplication::Fixed(3)),
            RDKafkaErrorCode::InvalidReplicationFactor,
        ),
        (
            NewTopic::new("badcfg", 1, TopicReplication::Fixed(1)).set("no.such.config", "1"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new("badval", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "shred"),
            RDKafkaErrorCode::InvalidConfig,
        ),
        (
            NewTopic::new("bad name", 1, TopicReplication::Fixed(1)),
            RDKafkaErrorCode::InvalidTopic,
        ),
        (
            NewTopic::new("assigned", 1, TopicReplication::Variable(&[&[7]])),
            RDKafkaErrorCode::InvalidReplicaAssignment,
        ),
    ];
    for (topic, expected) in &cases {
        let result = admin
            .create_topics([topic], &options())
            .await
            .expect("request");
        assert_eq!(
            result,
            vec![Err((topic.name.to_owned(), *expected))],
            "{}",
            topic.name
        );
    }
    let check_only = NewTopic::new("dry", 2, TopicReplication::Fixed(1));
    let result = admin
        .create_topics([&check_only], &options().validate_only(true))
        .await
        .expect("validate only");
    assert_eq!(result, vec![Ok("dry".to_owned())]);
    assert!(
        broker.running.broker().topics.get("dry").is_none(),
        "validate_only created the topic"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_configs_and_cluster_metadata() {
    let broker = TestBroker::start(&[("log.retention.hours", "1"), ("num.partitions", "4")]).await;
    let admin = broker.admin();
    let described = admin
        .describe_configs([&ResourceSpecifier::Broker(1)], &options())
        .await
        .expect("describe broker");
    let resource = described[0].as_ref().expect("broker resource");
    let entries = resource.entry_map();
    assert_eq!(entries["log.retention.hours"].value.as_deref(), Some("1"));
    assert_eq!(
        entries["log.retention.hours"].source,
        ConfigSource::StaticBroker
    );
    assert_eq!(entries["num.partitions"].value.as_deref(), Some("4"));
    assert_eq!(entries["message.max.bytes"].source, ConfigSource::Default);

    // Topic defaults follow the broker's settings.
    let topic = NewTopic::new("defaults", -1, TopicReplication::Fixed(-1));
    admin
        .create_topics([&topic], &options())
        .await
        .expect("create")
        .remove(0)
        .expect("created");
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("defaults")], &options())
        .await
        .expect("describe topic");
    let entries = described[0]
        .as_ref()
        .expect("topic")
        .entry_map()
        .into_iter()
        .map(|(k, v)| {
            (
                k.to_owned(),
                (v.value.clone(), v.source == ConfigSource::StaticBroker),
            )
        })
        .collect::<std::collections::HashMap<_, _>>();
    assert_eq!(entries["retention.ms"], (Some("3600000".to_owned()), true));
    assert_eq!(metadata_partitions(&broker, "defaults"), Some(4));

    let consumer: BaseConsumer = broker.client_config().create().expect("consumer");
    let metadata = consumer.fetch_metadata(None, DEADLINE).expect("metadata");
    let brokers = metadata.brokers();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0].id(), 1);
    assert_eq!(
        brokers[0].port(),
        i32::from(broker.running.local_addr().port())
    );
    assert!(metadata.topics().iter().any(|t| t.name() == "defaults"));
}

#[tokio::test(flavor = "multi_thread")]
async fn topics_survive_restart() {
    let broker = TestBroker::start(&[]).await;
    let admin = broker.admin();
    let topic =
        NewTopic::new("kept", 2, TopicReplication::Fixed(1)).set("segment.bytes", "2097152");
    admin
        .create_topics([&topic], &options())
        .await
        .expect("create")
        .remove(0)
        .expect("created");
    let id = broker
        .running
        .broker()
        .topics
        .get("kept")
        .expect("registered")
        .id;
    drop(admin);
    let dir = broker.stop().await;

    let broker = TestBroker::start_in(dir, &[]).await;
    let meta = broker
        .running
        .broker()
        .topics
        .get("kept")
        .expect("still there");
    assert_eq!(meta.id, id);
    assert_eq!(metadata_partitions(&broker, "kept"), Some(2));
    let described = broker
        .admin()
        .describe_configs([&ResourceSpecifier::Topic("kept")], &options())
        .await
        .expect("describe");
    let resource = described[0].as_ref().expect("topic");
    assert_eq!(
        resource
            .get("segment.bytes")
            .and_then(|e| e.value.as_deref()),
        Some("2097152")
    );
}

/// Describes broker 1 and returns its entries by name.
async fn broker_entries(broker: &TestBroker) -> std::collections::HashMap<String, ConfigEntry> {
    let described = broker
        .admin()
        .describe_configs([&ResourceSpecifier::Broker(1)], &options())
        .await
        .expect("describe broker");
    let resource = described.into_iter().next().expect("one result");
    let resource = resource.expect("broker resource");
    resource
        .entries
        .into_iter()
        .map(|e| (e.name.clone(), e))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dynamic_broker_configs() {
    let broker = TestBroker::start(&[]).await;
    broker.create_topic("dyn", 1, &[]).await;
    let admin = broker.admin();

    // Every Kafka 4.1 broker key is described; passwords have no value.
    let entries = broker_entries(&broker).await;
    assert!(entries.len() > 200, "only {} broker keys", entries.len());
    let jaas = &entries["sasl.jaas.config"];
    assert!(jaas.is_sensitive && jaas.value.is_none());
    assert!(entries["log.retention.hours"].is_read_only);
    assert!(!entries["log.retention.ms"].is_read_only);

    // A per-broker key (librdkafka's own test sets this one) and a
    // cluster-wide topic default, on broker 1.
    let alter = AlterConfig::new(ResourceSpecifier::Broker(1))
        .set("sasl.kerberos.min.time.before.relogin", "58000")
        .set("log.retention.ms", "7200000");
    let result = admin
        .alter_configs([&alter], &options())
        .await
        .expect("alter");
    assert!(result[0].is_ok(), "{:?}", result[0]);
    let entries = broker_entries(&broker).await;
    let retention = &entries["log.retention.ms"];
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert_eq!(retention.source, ConfigSource::DynamicBroker);
    assert_eq!(
        entries["sasl.kerberos.min.time.before.relogin"]
            .value
            .as_deref(),
        Some("58000")
    );
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic("dyn")], &options())
        .await
        .expect("describe topic");
    let topic = described[0].as_ref().expect("topic");
    let topic_retention = topic.get("retention.ms").expect("retention.ms");
    assert_eq!(topic_retention.value.as_deref(), Some("7200000"));
    assert_eq!(topic_retention.source, ConfigSource::DynamicBroker);

    // Refusals (a read-only key, a bad value) store nothing. The rdkafka
    // crate drops per-resource error codes, so protocol-tests/broker_configs.rs
    // checks those (INVALID_REQUEST and Kafka's messages).
    for (key, value) in [("node.id", "7"), ("log.retention.ms", "soon")] {
        let alter = AlterConfig::new(ResourceSpecifier::Broker(1)).set(key, value);
        admin
            .alter_configs([&alter], &options())
            .await
            .expect("alter");
    }
    let entries = broker_entries(&broker).await;
    assert_eq!(entries["node.id"].value.as_deref(), Some("1"));
    assert_eq!(
        entries["log.retention.ms"].value.as_deref(),
        Some("7200000")
    );

    // A restart keeps dynamic configs.
    drop(admin);
    let broker = TestBroker::start_in(broker.stop().await, &[]).await;
    let entries = broker_entries(&broker).await;
    assert_eq!(
        entries["log.retention.ms"].source,
        ConfigSource::DynamicBroker
    );
    assert_eq!(
        broker
            .running
            .broker()
            .log_config(&Default::default())
            .retention_ms,
        7_200_000
    );
}
