//! Pipelining: many requests written at once on one connection (as
//! librdkafka and the Java client do) are all answered, in request order,
//! each with its own correlation id; also across a write split mid-frame.

use bytes::Bytes;
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, MetadataRequest, MetadataResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::support::{
    api_versions_request, decode_response, request_frame, strom_table, table, with_size_prefix,
    Client, TestBroker,
};

/// One request of the pipeline.
struct Sent {
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    /// For Metadata: the topic asked for, if any.
    topic: Option<String>,
}

/// Twenty mixed requests with distinct, non-monotonic correlation ids.
fn pipeline() -> Vec<Sent> {
    (0..20)
        .map(|i: i32| {
            let correlation_id = (i * 7919) % 1009 + 100;
            match i % 4 {
                0 => Sent {
                    key: ApiKey::ApiVersions,
                    version: 3,
                    correlation_id,
                    topic: None,
                },
                1 => Sent {
                    key: ApiKey::Metadata,
                    version: 12,
                    correlation_id,
                    topic: Some(format!("pipe-{i}")),
                },
                2 => Sent {
                    key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    topic: None,
                },
                _ => Sent {
                    key: ApiKey::Metadata,
                    version: 1,
                    correlation_id,
                    topic: None,
                },
            }
        })
        .collect()
}

fn encode(sent: &Sent) -> Vec<u8> {
    let frame = match sent.key {
        ApiKey::ApiVersions => request_frame(
            sent.key,
            sent.version,
            sent.correlation_id,
            &api_versions_request(),
        ),
        _ => {
            let topics = sent.topic.as_ref().map(|t| {
                vec![MetadataRequestTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(t.clone()))))]
            });
            let request = MetadataRequest::default()
                .with_topics(topics)
                .with_allow_auto_topic_creation(true);
            request_frame(sent.key, sent.version, sent.correlation_id, &request)
        }
    };
    with_size_prefix(&frame)
}

fn check(sent: &Sent, index: usize, frame: Bytes) {
    match sent.key {
        ApiKey::ApiVersions => {
            let (correlation_id, body): (i32, ApiVersionsResponse) =
                decode_response(sent.key, sent.version, frame);
            assert_eq!(
                correlation_id, sent.correlation_id,
                "response {index}: order"
            );
            assert_eq!(body.error_code, 0, "response {index}");
            assert_eq!(table(&body.api_keys), strom_table(), "response {index}");
        }
        _ => {
            let (correlation_id, body): (i32, MetadataResponse) =
                decode_response(sent.key, sent.version, frame);
            assert_eq!(
                correlation_id, sent.correlation_id,
                "response {index}: order"
            );
            assert_eq!(body.brokers.len(), 1, "response {index}: brokers");
            if let Some(topic) = &sent.topic {
                assert_eq!(body.topics.len(), 1, "response {index}: topics");
                let t = &body.topics[0];
                assert_eq!(
                    t.name.as_ref().map(|n| n.0.as_str()),
                    Some(topic.as_str()),
                    "response {index}: topic name"
                );
                assert_eq!(t.error_code, 0, "response {index}: topic error");
            }
        }
    }
}

async fn read_all(client: &mut Client, sent: &[Sent]) {
    for (index, request) in sent.iter().enumerate() {
        let frame = client.read_frame().await;
        check(request, index, frame);
    }
}

#[tokio::test]
async fn twenty_requests_in_one_write_come_back_in_order() {
    let sent = pipeline();
    let ids: std::collections::BTreeSet<i32> = sent.iter().map(|s| s.correlation_id).collect();
    assert_eq!(ids.len(), sent.len(), "correlation ids are distinct");
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let bytes: Vec<u8> = sent.iter().flat_map(encode).collect();
    client.write_raw(&bytes).await;
    read_all(&mut client, &sent).await;
    // The connection is still in step afterwards.
    client.api_versions_ok().await;
    broker.shutdown().await;
}

#[tokio::test]
async fn frames_split_across_writes_are_reassembled() {
    let sent = pipeline();
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let bytes: Vec<u8> = sent.iter().flat_map(encode).collect();
    // Odd-sized chunks cut through size prefixes, headers and bodies.
    for chunk in bytes.chunks(37) {
        client.write_raw(chunk).await;
    }
    read_all(&mut client, &sent).await;
    broker.shutdown().await;
}

#[tokio::test]
async fn pipelines_on_several_connections_do_not_mix() {
    let broker = TestBroker::start().await;
    let sent = pipeline();
    let bytes: Vec<u8> = sent.iter().flat_map(encode).collect();
    let mut clients = Vec::new();
    for _ in 0..4 {
        let mut client = broker.connect().await;
        client.write_raw(&bytes).await;
        clients.push(client);
    }
    for client in &mut clients {
        read_all(client, &sent).await;
    }
    broker.shutdown().await;
}
