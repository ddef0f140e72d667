//! Metadata (key 3) at v0, v1, v9, v12 and v13: the broker list, cluster id
//! and controller; auto-creation of a named topic (1 partition led by node
//! 1); stable topic ids (v10+); INVALID_TOPIC_EXCEPTION for a bad name;
//! UNKNOWN_TOPIC_OR_PARTITION when auto-creation is off (broker config or
//! the v4+ request flag); UNKNOWN_TOPIC_ID for an unknown id; and the
//! "all topics" forms (null list on v1+, empty list on v0).

use std::collections::BTreeSet;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{ApiKey, BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::support::{Client, TestBroker};

/// The versions exercised: the first, the first with nullable topics, the
/// last non-flexible-ids one, and the two newest.
const VERSIONS: &[i16] = &[0, 1, 9, 12, 13];

fn named(name: &str) -> MetadataRequestTopic {
    MetadataRequestTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_owned()))))
}

/// A request for `names`. `allow_auto` only exists from v4: below that it
/// must stay `true` (the encoder refuses to write a v0-v3 request without it).
fn request(names: &[&str], allow_auto: bool) -> MetadataRequest {
    MetadataRequest::default()
        .with_topics(Some(names.iter().map(|n| named(n)).collect()))
        .with_allow_auto_topic_creation(allow_auto)
}

async fn metadata(
    client: &mut Client,
    version: i16,
    request: &MetadataRequest,
) -> MetadataResponse {
    client.request(ApiKey::Metadata, version, request).await
}

fn name_of(topic: &MetadataResponseTopic) -> String {
    topic
        .name
        .as_ref()
        .map(|n| n.0.to_string())
        .unwrap_or_default()
}

fn only_topic<'a>(response: &'a MetadataResponse, what: &str) -> &'a MetadataResponseTopic {
    assert_eq!(
        response.topics.len(),
        1,
        "{what}: one topic in {response:?}"
    );
    &response.topics[0]
}

fn names(response: &MetadataResponse) -> BTreeSet<String> {
    response.topics.iter().map(name_of).collect()
}

#[tokio::test]
async fn brokers_cluster_id_and_controller() {
    let broker = TestBroker::start().await;
    let port = i32::from(broker.addr().port());
    let mut client = broker.connect().await;
    let mut cluster_ids = BTreeSet::new();
    for &version in VERSIONS {
        let response = metadata(&mut client, version, &request(&[], true)).await;
        assert_eq!(response.brokers.len(), 1, "v{version} brokers");
        let b = &response.brokers[0];
        assert_eq!(b.node_id, BrokerId(1), "v{version} node id");
        assert_eq!(b.host.as_str(), "127.0.0.1", "v{version} host");
        assert_eq!(b.port, port, "v{version} port");
        if version >= 1 {
            assert_eq!(response.controller_id, BrokerId(1), "v{version} controller");
        }
        if version >= 2 {
            let id = response
                .cluster_id
                .as_ref()
                .unwrap_or_else(|| panic!("v{version}: cluster id missing"));
            assert!(!id.is_empty(), "v{version}: empty cluster id");
            cluster_ids.insert(id.to_string());
        }
        if version >= 13 {
            assert_eq!(response.error_code, 0, "v{version} top-level error");
        }
    }
    assert_eq!(cluster_ids.len(), 1, "one cluster id: {cluster_ids:?}");
    broker.shutdown().await;
}

/// `broker.rack` shows as the broker's rack from v1 (null without one).
#[tokio::test]
async fn the_brokers_rack() {
    let broker = TestBroker::start_with(&[("broker.rack", "eu-west-1a")]).await;
    let mut client = broker.connect().await;
    let response = metadata(&mut client, 12, &request(&[], true)).await;
    assert_eq!(
        response.brokers[0].rack.as_deref(),
        Some("eu-west-1a"),
        "rack"
    );
    broker.shutdown().await;
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let response = metadata(&mut client, 12, &request(&[], true)).await;
    assert_eq!(response.brokers[0].rack, None, "no rack");
    broker.shutdown().await;
}

#[tokio::test]
async fn a_new_topic_is_auto_created() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for &version in VERSIONS {
        let name = format!("auto-v{version}");
        let response = metadata(&mut client, version, &request(&[&name], true)).await;
        let topic = only_topic(&response, &name);
        assert_eq!(topic.error_code, 0, "v{version} {name} error");
        assert_eq!(name_of(topic), name, "v{version} name");
        assert_eq!(topic.partitions.len(), 1, "v{version} partitions");
        let p = &topic.partitions[0];
        assert_eq!(p.error_code, 0, "v{version} partition error");
        assert_eq!(p.partition_index, 0, "v{version} partition index");
        assert_eq!(p.leader_id, BrokerId(1), "v{version} leader");
        assert_eq!(p.replica_nodes, vec![BrokerId(1)], "v{version} replicas");
        assert_eq!(p.isr_nodes, vec![BrokerId(1)], "v{version} isr");
        if version >= 7 {
            assert!(p.leader_epoch >= 0, "v{version} leader epoch");
        }
        // Asking again finds the same topic, with no error (from v4 without
        // allowing auto-creation; the flag does not exist before v4).
        let again = metadata(&mut client, version, &request(&[&name], version < 4)).await;
        assert_eq!(only_topic(&again, &name).error_code, 0, "v{version} again");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn topic_ids_are_set_and_stable() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let first = metadata(&mut client, 12, &request(&["with-id"], true)).await;
    let id = only_topic(&first, "with-id").topic_id;
    assert!(!id.is_nil(), "v12: topic id is nil");
    for version in [10, 11, 12, 13] {
        let response = metadata(&mut client, version, &request(&["with-id"], false)).await;
        assert_eq!(
            only_topic(&response, "with-id").topic_id,
            id,
            "v{version} id"
        );
    }
    // A second connection sees the same id; so does the all-topics form.
    let mut other = broker.connect().await;
    let all = metadata(
        &mut other,
        13,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    let listed = all
        .topics
        .iter()
        .find(|t| name_of(t) == "with-id")
        .expect("listed");
    assert_eq!(listed.topic_id, id, "all-topics id");
    // And by id (v12+, name null) resolves to the same topic.
    let by_id = MetadataRequest::default()
        .with_topics(Some(vec![MetadataRequestTopic::default()
            .with_topic_id(id)
            .with_name(None)]))
        .with_allow_auto_topic_creation(false);
    let response = metadata(&mut other, 12, &by_id).await;
    let topic = only_topic(&response, "by id");
    assert_eq!(topic.error_code, 0, "by id error");
    assert_eq!(name_of(topic), "with-id", "by id name");
    broker.shutdown().await;
}

#[tokio::test]
async fn invalid_topic_name() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for &version in VERSIONS {
        for bad in ["bad name!", "..", "ä"] {
            let response = metadata(&mut client, version, &request(&[bad], true)).await;
            let topic = only_topic(&response, bad);
            assert_eq!(
                topic.error_code, 17,
                "v{version} {bad:?}: INVALID_TOPIC_EXCEPTION"
            );
            assert_eq!(name_of(topic), bad, "v{version} name echoed");
            assert!(topic.partitions.is_empty(), "v{version} no partitions");
        }
    }
    // Nothing was created.
    let all = metadata(
        &mut client,
        1,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    assert!(all.topics.is_empty(), "created: {:?}", names(&all));
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_when_auto_create_is_disabled_by_config() {
    let broker = TestBroker::start_with(&[("auto.create.topics.enable", "false")]).await;
    let mut client = broker.connect().await;
    for &version in VERSIONS {
        let name = format!("absent-v{version}");
        // Even when the request allows it, the broker setting wins.
        let response = metadata(&mut client, version, &request(&[&name], true)).await;
        let topic = only_topic(&response, &name);
        assert_eq!(
            topic.error_code, 3,
            "v{version}: UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(name_of(topic), name, "v{version} name echoed");
        assert!(topic.partitions.is_empty(), "v{version} no partitions");
    }
    let all = metadata(
        &mut client,
        1,
        &MetadataRequest::default().with_topics(None),
    )
    .await;
    assert!(all.topics.is_empty(), "created: {:?}", names(&all));
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_when_the_request_disallows_auto_create() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    for version in [4, 9, 12, 13] {
        let name = format!("not-wanted-v{version}");
        let response = metadata(&mut client, version, &request(&[&name], false)).await;
        let topic = only_topic(&response, &name);
        assert_eq!(
            topic.error_code, 3,
            "v{version}: UNKNOWN_TOPIC_OR_PARTITION"
        );
        // Still absent afterwards.
        let again = metadata(&mut client, version, &request(&[&name], false)).await;
        assert_eq!(only_topic(&again, &name).error_code, 3, "v{version} again");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn unknown_topic_id() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let unknown = uuid::Uuid::new_v4();
    for version in [12, 13] {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_topic_id(unknown)
                .with_name(None)]))
            .with_allow_auto_topic_creation(true);
        let response = metadata(&mut client, version, &request).await;
        let topic = only_topic(&response, "unknown id");
        assert_eq!(topic.error_code, 100, "v{version}: UNKNOWN_TOPIC_ID");
        assert_eq!(topic.topic_id, unknown, "v{version} id echoed");
        assert!(topic.partitions.is_empty(), "v{version} no partitions");
    }
    broker.shutdown().await;
}

#[tokio::test]
async fn all_topics_forms() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let created = ["all-a", "all-b", "all-c"];
    let response = metadata(&mut client, 12, &request(&created, true)).await;
    assert!(
        response.topics.iter().all(|t| t.error_code == 0),
        "creating: {response:?}"
    );
    let expected: BTreeSet<String> = created.iter().map(|s| (*s).to_owned()).collect();
    for &version in VERSIONS {
        let all_form = if version == 0 {
            MetadataRequest::default().with_topics(Some(Vec::new()))
        } else {
            MetadataRequest::default().with_topics(None)
        };
        let response = metadata(&mut client, version, &all_form).await;
        assert_eq!(names(&response), expected, "v{version} all topics");
        for topic in &response.topics {
            assert_eq!(topic.error_code, 0, "v{version} {}", name_of(topic));
            assert_eq!(topic.partitions.len(), 1, "v{version} {}", name_of(topic));
        }
        if version >= 1 {
            // An empty (not null) list asks for no topics at all.
            let none = metadata(
                &mut client,
                version,
                &MetadataRequest::default().with_topics(Some(Vec::new())),
            )
            .await;
            assert!(
                none.topics.is_empty(),
                "v{version} empty list: {:?}",
                names(&none)
            );
        }
    }
    broker.shutdown().await;
}
