//! SASL and ACLs at the byte level: what a SASL listener serves before
//! authentication, Kafka's answers to failed logins, SCRAM credentials
//! through the admin APIs and a SCRAM login, and a table of every
//! operation the handlers check, denied without ACLs, allowed by a literal
//! or prefixed ACL, denied again by a DENY.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::support::{keyed_batch, text, Client, TestBroker};

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

/// A broker with PLAINTEXT and SASL_PLAINTEXT (PLAIN, SCRAM) listeners;
/// with `acls`, Kafka's StandardAuthorizer and `User:admin` as super user.
async fn secured_broker(acls: bool) -> TestBroker {
    let mut settings = vec![
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        ),
        (
            "sasl.enabled.mechanisms",
            "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        ),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_admin=\"admin-secret\" user_alice=\"alice-secret\";",
        ),
        ("sasl.server.max.receive.size", "4096"),
    ];
    if acls {
        settings.push((
            "authorizer.class.name",
            "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ));
        settings.push(("super.users", "User:admin;User:ANONYMOUS"));
    }
    TestBroker::start_with(&settings).await
}

async fn login(broker: &TestBroker, user: &str, password: &str) -> Client {
    let mut client = Client::connect(broker.listener_addr("SASL_PLAINTEXT")).await;
    let answer = client.sasl_plain(user, password).await;
    assert_eq!(
        answer.error_code, 0,
        "{user} logs in: {:?}",
        answer.error_message
    );
    client
}

fn metadata_request(topic: Option<&str>) -> MetadataRequest {
    MetadataRequest::default().with_topics(topic.map(|t| {
        vec![metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(text(t))))]
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sasl_listener_serves_nothing_before_authentication() {
    let broker = secured_broker(false).await;
    let sasl = broker.listener_addr("SASL_PLAINTEXT");

    // ApiVersions is served, Metadata closes the connection unanswered.
    let mut client = Client::connect(sasl).await;
    client.api_versions_ok().await;
    let id = client.correlation_id();
    client
        .send_frame(&crate::support::request_frame(
            ApiKey::Metadata,
            12,
            id,
            &metadata_request(None),
        ))
        .await;
    client.expect_closed("Metadata before authentication").await;

    // An unknown mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
    let mut client = Client::connect(sasl).await;
    let handshake: SaslHandshakeResponse = client
        .request(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(text("GSSAPI")),
        )
        .await;
    assert_eq!(handshake.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    let enabled: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(enabled, ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]);
    client.expect_closed("after an unsupported mechanism").await;

    // A wrong password and an unknown user: Kafka's message, then closed.
    for (user, password) in [("alice", "wrong"), ("mallory", "alice-secret")] {
        let mut client = Client::connect(sasl).await;
        let answer = client.sasl_plain(user, password).await;
        assert_eq!(
            answer.error_code, 58,
            "SASL_AUTHENTICATION_FAILED for {user}"
        );
        assert_eq!(
            answer.error_message.as_deref(),
            Some("Authentication failed: Invalid username or password")
        );
        client.expect_closed("after a failed login").await;
    }

    // A frame above sasl.server.max.receive.size before authentication: closed.
    let mut client = Client::connect(sasl).await;
    client.send_frame(&vec![0u8; 8192]).await;
    client
        .expect_closed("an oversized frame before authentication")
        .await;

    // The right password: served; large frames allowed again.
    let mut client = login(&broker, "alice", "alice-secret").await;
    let metadata: MetadataResponse = client
        .request(ApiKey::Metadata, 12, &metadata_request(None))
        .await;
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(
        metadata.brokers[0].port,
        i32::from(sasl.port()),
        "Metadata names the broker's address on the SASL listener"
    );

    // On the PLAINTEXT listener SASL requests are out of place but harmless.
    let mut plain = broker.connect().await;
    let handshake: SaslHandshakeResponse = plain
        .request(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
        )
        .await;
    assert_eq!(handshake.error_code, 34, "ILLEGAL_SASL_STATE");
    plain.api_versions_ok().await;
    broker.shutdown().await;
}

/// The client side of SCRAM (RFC 5802) for one login.
async fn scram_login(client: &mut Client, mechanism: &str, user: &str, password: &str) -> i16 {
    let handshake: SaslHandshakeResponse = client
        .request(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(text(mechanism)),
        )
        .await;
    assert_eq!(handshake.error_code, 0);
    let client_nonce = "rOprNGfwEbeRWgbNEkqO";
    let first_bare = format!("n={user},r={client_nonce}");
    let first: SaslAuthenticateResponse = client
        .request(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("n,,{first_bare}"))),
        )
        .await;
    if first.error_code != 0 {
        return first.error_code;
    }
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).expect("utf-8");
    let attribute = |name: &str| {
        server_first
            .split(',')
            .find_map(|a| a.strip_prefix(name))
            .expect("attribute")
            .to_owned()
    };
    let nonce = attribute("r=");
    assert!(nonce.starts_with(client_nonce), "server nonce extends ours");
    let salt = BASE64.decode(attribute("s=")).expect("salt");
    let iterations: i32 = attribute("i=").parse().expect("iterations");
    let m = strom::security::scram::ScramMechanism::from_name(mechanism).expect("mechanism");
    let salted = m.salted_password(password, &salt, iterations);
    let (algorithm, digest) = match mechanism {
        "SCRAM-SHA-256" => (ring::hmac::HMAC_SHA256, &ring::digest::SHA256),
        _ => (ring::hmac::HMAC_SHA512, &ring::digest::SHA512),
    };
    let mac = |key: &[u8], data: &[u8]| {
        ring::hmac::sign(&ring::hmac::Key::new(algorithm, key), data)
            .as_ref()
            .to_vec()
    };
    let client_key = mac(&salted, b"Client Key");
    let stored_key = ring::digest::digest(digest, &client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = mac(stored_key.as_ref(), auth_message.as_bytes());
    let proof: Vec<u8> = client_key
        .iter()
        .zip(&signature)
        .map(|(a, b)| a ^ b)
        .collect();
    let last: SaslAuthenticateResponse = client
        .request(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(format!(
                "{without_proof},p={}",
                BASE64.encode(proof)
            ))),
        )
        .await;
    if last.error_code == 0 {
        let server_key = mac(&salted, b"Server Key");
        let expected = format!(
            "v={}",
            BASE64.encode(mac(&server_key, auth_message.as_bytes()))
        );
        assert_eq!(last.auth_bytes, Bytes::from(expected), "server signature");
    }
    last.error_code
}

fn upsertion(
    user: &str,
    mechanism: i8,
    iterations: i32,
    password: &str,
) -> alter_user_scram_credentials_request::ScramCredentialUpsertion {
    let m = strom::security::scram::ScramMechanism::from_type(mechanism).expect("mechanism");
    let salt = b"0123456789abcdef".to_vec();
    alter_user_scram_credentials_request::ScramCredentialUpsertion::default()
        .with_name(text(user))
        .with_mechanism(mechanism)
        .with_iterations(iterations)
        .with_salt(Bytes::from(salt.clone()))
        .with_salted_password(Bytes::from(m.salted_password(password, &salt, iterations)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_users_are_managed_and_log_in() {
    let broker = secured_broker(false).await;
    let mut admin = broker.connect().await;
    let results: AlterUserScramCredentialsResponse = admin
        .request(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                upsertion("bob", 1, 4096, "bob-secret"),
                upsertion("carol", 2, 8192, "carol-secret"),
                upsertion("dave", 1, 1000, "x"),
            ]),
        )
        .await;
    let codes: BTreeMap<String, i16> = results
        .results
        .iter()
        .map(|r| (r.user.to_string(), r.error_code))
        .collect();
    assert_eq!(
        codes,
        BTreeMap::from([("bob".into(), 0), ("carol".into(), 0), ("dave".into(), 93)]),
        "UNACCEPTABLE_CREDENTIAL below 4096 iterations"
    );
    // A user named twice in one request: DUPLICATE_RESOURCE, as Kafka.
    let twice: AlterUserScramCredentialsResponse = admin
        .request(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                upsertion("erin", 1, 4096, "e"),
                upsertion("erin", 2, 4096, "e"),
            ]),
        )
        .await;
    assert_eq!(twice.results.len(), 1);
    assert_eq!(twice.results[0].error_code, 92);

    let described: DescribeUserScramCredentialsResponse = admin
        .request(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
                describe_user_scram_credentials_request::UserName::default().with_name(text("bob")),
                describe_user_scram_credentials_request::UserName::default()
                    .with_name(text("nobody")),
            ])),
        )
        .await;
    assert_eq!(described.results.len(), 2);
    assert_eq!(described.results[0].credential_infos.len(), 1);
    assert_eq!(described.results[0].credential_infos[0].iterations, 4096);
    assert_eq!(described.results[1].error_code, 91, "RESOURCE_NOT_FOUND");

    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        scram_login(&mut client, "SCRAM-SHA-256", "bob", "bob-secret").await,
        0
    );
    client.api_versions_ok().await;
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        scram_login(&mut client, "SCRAM-SHA-512", "carol", "carol-secret").await,
        0
    );
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        scram_login(&mut client, "SCRAM-SHA-256", "bob", "wrong").await,
        58
    );
    client.expect_closed("after a failed SCRAM login").await;
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        scram_login(&mut client, "SCRAM-SHA-512", "bob", "bob-secret").await,
        58,
        "bob has no SHA-512 credential"
    );

    // Deleted: refused from then on; a deletion of nothing is RESOURCE_NOT_FOUND.
    let deleted: AlterUserScramCredentialsResponse = admin
        .request(
            ApiKey::AlterUserScramCredentials,
            0,
            &AlterUserScramCredentialsRequest::default().with_deletions(vec![
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(text("bob"))
                    .with_mechanism(1),
                alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                    .with_name(text("nobody"))
                    .with_mechanism(1),
            ]),
        )
        .await;
    let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, [0, 91]);
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        scram_login(&mut client, "SCRAM-SHA-256", "bob", "bob-secret").await,
        58
    );
    broker.shutdown().await;
}

/// One operation a handler checks: the resource and operation its ACL
/// names, the error it gives when denied, and the request that exercises it.
#[derive(Clone, Copy)]
struct Case {
    name: &'static str,
    resource_type: i8,
    resource: &'static str,
    operation: i8,
    denied: i16,
    /// An ALLOW the client holds throughout (resource type, name,
    /// operation), for requests checked on two resources: without it the
    /// first check would answer.
    requires: Option<(i8, &'static str, i8)>,
}

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TXN_ID: i8 = 5;
const READ: i8 = 3;
const WRITE: i8 = 4;
const CREATE: i8 = 5;
const DELETE: i8 = 6;
const ALTER: i8 = 7;
const DESCRIBE: i8 = 8;
const CLUSTER_ACTION: i8 = 9;
const DESCRIBE_CONFIGS: i8 = 10;
const ALTER_CONFIGS: i8 = 11;
const IDEMPOTENT_WRITE: i8 = 12;

const CASES: &[Case] = &[
    Case {
        name: "produce",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: WRITE,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "fetch",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: READ,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "list-offsets",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: DESCRIBE,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "metadata",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: DESCRIBE,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "create-topics",
        resource_type: TOPIC,
        resource: "acl-new",
        operation: CREATE,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "delete-records",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: DELETE,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "create-partitions",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: ALTER,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "describe-topic-configs",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: DESCRIBE_CONFIGS,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "alter-topic-configs",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: ALTER_CONFIGS,
        denied: TOPIC_DENIED,
        requires: None,
    },
    Case {
        name: "heartbeat",
        resource_type: GROUP,
        resource: "acl-group",
        operation: READ,
        denied: GROUP_DENIED,
        requires: None,
    },
    Case {
        name: "describe-groups",
        resource_type: GROUP,
        resource: "acl-group",
        operation: DESCRIBE,
        denied: GROUP_DENIED,
        requires: None,
    },
    Case {
        name: "delete-groups",
        resource_type: GROUP,
        resource: "acl-group",
        operation: DELETE,
        denied: GROUP_DENIED,
        requires: None,
    },
    Case {
        name: "find-group-coordinator",
        resource_type: GROUP,
        resource: "acl-group",
        operation: DESCRIBE,
        denied: GROUP_DENIED,
        requires: None,
    },
    Case {
        name: "describe-cluster",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: DESCRIBE,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "describe-log-dirs",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: DESCRIBE,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "alter-reassignments",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: ALTER,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "describe-broker-configs",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: DESCRIBE_CONFIGS,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "alter-broker-configs",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: ALTER_CONFIGS,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "idempotent-producer-id",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: IDEMPOTENT_WRITE,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "write-txn-markers",
        resource_type: CLUSTER,
        resource: "kafka-cluster",
        operation: CLUSTER_ACTION,
        denied: CLUSTER_DENIED,
        requires: None,
    },
    Case {
        name: "transactional-producer-id",
        resource_type: TXN_ID,
        resource: "acl-txn",
        operation: WRITE,
        denied: TXN_DENIED,
        requires: None,
    },
    Case {
        name: "add-partitions-to-txn",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: WRITE,
        denied: TOPIC_DENIED,
        requires: Some((TXN_ID, "acl-txn", WRITE)),
    },
    Case {
        name: "offset-delete",
        resource_type: TOPIC,
        resource: "acl-topic",
        operation: READ,
        denied: TOPIC_DENIED,
        requires: Some((GROUP, "acl-offsets", DELETE)),
    },
    Case {
        name: "describe-transactions",
        resource_type: TXN_ID,
        resource: "acl-txn",
        operation: DESCRIBE,
        denied: TXN_DENIED,
        requires: None,
    },
];

/// Runs a case's request as the client and returns the error code that
/// tells whether it was authorized.
async fn exercise(client: &mut Client, case: &Case) -> i16 {
    let topic = || TopicName(text("acl-topic"));
    match case.name {
        "produce" => {
            let response: ProduceResponse = client
                .request(
                    ApiKey::Produce,
                    9,
                    &ProduceRequest::default()
                        .with_acks(1)
                        .with_timeout_ms(5000)
                        .with_topic_data(vec![produce_request::TopicProduceData::default()
                            .with_name(topic())
                            .with_partition_data(vec![
                                produce_request::PartitionProduceData::default()
                                    .with_index(0)
                                    .with_records(Some(keyed_batch(1))),
                            ])]),
                )
                .await;
            response.responses[0].partition_responses[0].error_code
        }
        "fetch" => {
            let response: FetchResponse = client
                .request(
                    ApiKey::Fetch,
                    12,
                    &FetchRequest::default()
                        .with_max_wait_ms(0)
                        .with_max_bytes(1 << 20)
                        .with_topics(vec![fetch_request::FetchTopic::default()
                            .with_topic(topic())
                            .with_partitions(vec![fetch_request::FetchPartition::default()
                                .with_partition(0)
                                .with_partition_max_bytes(1 << 20)])]),
                )
                .await;
            response.responses[0].partitions[0].error_code
        }
        "list-offsets" => {
            let response: ListOffsetsResponse = client
                .request(
                    ApiKey::ListOffsets,
                    7,
                    &ListOffsetsRequest::default().with_topics(vec![
                        list_offsets_request::ListOffsetsTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![
                                list_offsets_request::ListOffsetsPartition::default()
                                    .with_partition_index(0)
                                    .with_timestamp(-1),
                            ]),
                    ]),
                )
                .await;
            response.topics[0].partitions[0].error_code
        }
        "metadata" => {
            let response: MetadataResponse = client
                .request(ApiKey::Metadata, 12, &metadata_request(Some("acl-topic")))
                .await;
            response.topics[0].error_code
        }
        "create-topics" => {
            let response: CreateTopicsResponse = client
                .request(
                    ApiKey::CreateTopics,
                    7,
                    &CreateTopicsRequest::default()
                        .with_validate_only(true)
                        .with_timeout_ms(5000)
                        .with_topics(vec![create_topics_request::CreatableTopic::default()
                            .with_name(TopicName(text("acl-new")))
                            .with_num_partitions(1)
                            .with_replication_factor(1)]),
                )
                .await;
            response.topics[0].error_code
        }
        "delete-records" => {
            let response: DeleteRecordsResponse = client
                .request(
                    ApiKey::DeleteRecords,
                    2,
                    &DeleteRecordsRequest::default()
                        .with_timeout_ms(5000)
                        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                            .with_name(topic())
                            .with_partitions(vec![
                                delete_records_request::DeleteRecordsPartition::default()
                                    .with_partition_index(0)
                                    .with_offset(0),
                            ])]),
                )
                .await;
            response.topics[0].partitions[0].error_code
        }
        "create-partitions" => {
            let response: CreatePartitionsResponse = client
                .request(
                    ApiKey::CreatePartitions,
                    3,
                    &CreatePartitionsRequest::default()
                        .with_validate_only(true)
                        .with_timeout_ms(5000)
                        .with_topics(vec![
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(topic())
                                .with_count(2),
                        ]),
                )
                .await;
            response.results[0].error_code
        }
        "describe-topic-configs" | "describe-broker-configs" => {
            let (kind, name) = if case.name == "describe-topic-configs" {
                (2, "acl-topic")
            } else {
                (4, "1")
            };
            let response: DescribeConfigsResponse = client
                .request(
                    ApiKey::DescribeConfigs,
                    4,
                    &DescribeConfigsRequest::default().with_resources(vec![
                        describe_configs_request::DescribeConfigsResource::default()
                            .with_resource_type(kind)
                            .with_resource_name(text(name)),
                    ]),
                )
                .await;
            response.results[0].error_code
        }
        "alter-topic-configs" | "alter-broker-configs" => {
            let (kind, name, key, value) = if case.name == "alter-topic-configs" {
                (2, "acl-topic", "retention.ms", "100000")
            } else {
                (4, "1", "log.cleaner.threads", "1")
            };
            let response: IncrementalAlterConfigsResponse = client
                .request(
                    ApiKey::IncrementalAlterConfigs,
                    1,
                    &IncrementalAlterConfigsRequest::default()
                        .with_validate_only(true)
                        .with_resources(vec![
                            incremental_alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(kind)
                                .with_resource_name(text(name))
                                .with_configs(vec![
                                    incremental_alter_configs_request::AlterableConfig::default()
                                        .with_name(text(key))
                                        .with_config_operation(0)
                                        .with_value(Some(text(value))),
                                ]),
                        ]),
                )
                .await;
            response.responses[0].error_code
        }
        "heartbeat" => {
            let response: HeartbeatResponse = client
                .request(
                    ApiKey::Heartbeat,
                    4,
                    &HeartbeatRequest::default()
                        .with_group_id(GroupId(text("acl-group")))
                        .with_generation_id(1)
                        .with_member_id(text("m")),
                )
                .await;
            response.error_code
        }
        "describe-groups" => {
            let response: DescribeGroupsResponse = client
                .request(
                    ApiKey::DescribeGroups,
                    5,
                    &DescribeGroupsRequest::default().with_groups(vec![GroupId(text("acl-group"))]),
                )
                .await;
            response.groups[0].error_code
        }
        "delete-groups" => {
            let response: DeleteGroupsResponse = client
                .request(
                    ApiKey::DeleteGroups,
                    2,
                    &DeleteGroupsRequest::default()
                        .with_groups_names(vec![GroupId(text("acl-group"))]),
                )
                .await;
            response.results[0].error_code
        }
        "find-group-coordinator" => {
            let response: FindCoordinatorResponse = client
                .request(
                    ApiKey::FindCoordinator,
                    4,
                    &FindCoordinatorRequest::default()
                        .with_key_type(0)
                        .with_coordinator_keys(vec![text("acl-group")]),
                )
                .await;
            response.coordinators[0].error_code
        }
        "describe-cluster" => {
            let response: DescribeClusterResponse = client
                .request(
                    ApiKey::DescribeCluster,
                    1,
                    &DescribeClusterRequest::default(),
                )
                .await;
            response.error_code
        }
        "describe-log-dirs" => {
            let response: DescribeLogDirsResponse = client
                .request(
                    ApiKey::DescribeLogDirs,
                    4,
                    &DescribeLogDirsRequest::default(),
                )
                .await;
            response.error_code
        }
        "alter-reassignments" => {
            let response: AlterPartitionReassignmentsResponse = client
                .request(
                    ApiKey::AlterPartitionReassignments,
                    0,
                    &AlterPartitionReassignmentsRequest::default().with_timeout_ms(5000),
                )
                .await;
            response.error_code
        }
        "idempotent-producer-id" | "transactional-producer-id" => {
            let id = (case.name == "transactional-producer-id")
                .then(|| TransactionalId(text("acl-txn")));
            let response: InitProducerIdResponse = client
                .request(
                    ApiKey::InitProducerId,
                    4,
                    &InitProducerIdRequest::default()
                        .with_transactional_id(id)
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
                .await;
            response.error_code
        }
        "write-txn-markers" => {
            let response: WriteTxnMarkersResponse = client
                .request(
                    ApiKey::WriteTxnMarkers,
                    1,
                    &WriteTxnMarkersRequest::default().with_markers(vec![
                        write_txn_markers_request::WritableTxnMarker::default()
                            .with_producer_id(ProducerId(999_999))
                            .with_producer_epoch(0)
                            .with_transaction_result(false)
                            .with_topics(vec![
                                write_txn_markers_request::WritableTxnMarkerTopic::default()
                                    .with_name(topic())
                                    .with_partition_indexes(vec![0]),
                            ]),
                    ]),
                )
                .await;
            response.markers[0].topics[0].partitions[0].error_code
        }
        "add-partitions-to-txn" => {
            let response: AddPartitionsToTxnResponse = client
                .request(
                    ApiKey::AddPartitionsToTxn,
                    3,
                    &AddPartitionsToTxnRequest::default()
                        .with_v3_and_below_transactional_id(TransactionalId(text("acl-txn")))
                        .with_v3_and_below_producer_id(ProducerId(999_999))
                        .with_v3_and_below_producer_epoch(0)
                        .with_v3_and_below_topics(vec![
                            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![0]),
                        ]),
                )
                .await;
            response.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
        }
        "offset-delete" => {
            let response: OffsetDeleteResponse = client
                .request(
                    ApiKey::OffsetDelete,
                    0,
                    &OffsetDeleteRequest::default()
                        .with_group_id(GroupId(text("acl-offsets")))
                        .with_topics(vec![
                            offset_delete_request::OffsetDeleteRequestTopic::default()
                                .with_name(topic())
                                .with_partitions(vec![
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(0),
                                ]),
                        ]),
                )
                .await;
            assert_eq!(response.error_code, 0, "the group acl-offsets exists");
            response.topics[0].partitions[0].error_code
        }
        "describe-transactions" => {
            let response: DescribeTransactionsResponse = client
                .request(
                    ApiKey::DescribeTransactions,
                    0,
                    &DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(text("acl-txn"))]),
                )
                .await;
            response.transaction_states[0].error_code
        }
        other => panic!("no request for case {other}"),
    }
}

/// What a case's request needs in place, made by the admin: OffsetDelete
/// needs an offset of the group `acl-offsets` to delete.
async fn prepare(admin: &mut Client, case: &Case) {
    if case.name != "offset-delete" {
        return;
    }
    let response: OffsetCommitResponse = admin
        .request(
            ApiKey::OffsetCommit,
            2,
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(text("acl-offsets")))
                .with_generation_id_or_member_epoch(-1)
                .with_retention_time_ms(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(text("acl-topic")))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(0),
                        ]),
                ]),
        )
        .await;
    assert_eq!(
        response.topics[0].partitions[0].error_code, 0,
        "OffsetCommit"
    );
}

async fn create_acl(admin: &mut Client, case: &Case, pattern: i8, name: &str, permission: i8) {
    let response: CreateAclsResponse = admin
        .request(
            ApiKey::CreateAcls,
            3,
            &CreateAclsRequest::default().with_creations(vec![
                create_acls_request::AclCreation::default()
                    .with_resource_type(case.resource_type)
                    .with_resource_name(text(name))
                    .with_resource_pattern_type(pattern)
                    .with_principal(text("User:alice"))
                    .with_host(text("*"))
                    .with_operation(case.operation)
                    .with_permission_type(permission),
            ]),
        )
        .await;
    assert_eq!(
        response.results[0].error_code, 0,
        "CreateAcls: {:?}",
        response.results[0].error_message
    );
}

async fn delete_all_acls(admin: &mut Client) -> usize {
    let response: DeleteAclsResponse = admin
        .request(
            ApiKey::DeleteAcls,
            3,
            &DeleteAclsRequest::default().with_filters(vec![
                delete_acls_request::DeleteAclsFilter::default()
                    .with_resource_name_filter(None)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_resource_type_filter(1)
                    .with_pattern_type_filter(1)
                    .with_operation(1)
                    .with_permission_type(1),
            ]),
        )
        .await;
    assert_eq!(response.filter_results[0].error_code, 0);
    response.filter_results[0].matching_acls.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_checked_operation_is_denied_then_allowed_then_denied() {
    let broker = secured_broker(true).await;
    let mut admin = login(&broker, "admin", "admin-secret").await;
    crate::support::topic_with_records(&mut admin, "acl-topic", &[]).await;
    let mut outcomes = Vec::new();
    for case in CASES {
        let mut alice = login(&broker, "alice", "alice-secret").await;
        let requires = || async {
            if let Some((resource_type, name, operation)) = case.requires {
                let mut admin = login(&broker, "admin", "admin-secret").await;
                let required = Case {
                    resource_type,
                    operation,
                    requires: None,
                    ..*case
                };
                create_acl(&mut admin, &required, 3, name, 3).await;
            }
        };
        let acls = 1 + usize::from(case.requires.is_some());
        requires().await;
        prepare(&mut admin, case).await;
        let none = exercise(&mut alice, case).await;
        create_acl(&mut admin, case, 3, case.resource, 3).await;
        prepare(&mut admin, case).await;
        let literal = exercise(&mut alice, case).await;
        assert_eq!(delete_all_acls(&mut admin).await, acls, "{}", case.name);
        // A prefixed ALLOW (clusters have only the literal name).
        requires().await;
        let prefixed = if case.resource_type == CLUSTER {
            literal
        } else {
            create_acl(&mut admin, case, 4, &case.resource[..4], 3).await;
            prepare(&mut admin, case).await;
            exercise(&mut alice, case).await
        };
        // A DENY beside the ALLOW wins.
        create_acl(&mut admin, case, 3, case.resource, 2).await;
        prepare(&mut admin, case).await;
        let denied = exercise(&mut alice, case).await;
        delete_all_acls(&mut admin).await;
        outcomes.push(format!(
            "{}: none={none} literal={literal} prefixed={prefixed} deny={denied}",
            case.name
        ));
        assert_eq!(none, case.denied, "{}: denied without ACLs", case.name);
        assert_ne!(
            literal, case.denied,
            "{}: allowed by a literal ACL",
            case.name
        );
        assert_ne!(
            prefixed, case.denied,
            "{}: allowed by a prefixed ACL",
            case.name
        );
        assert_eq!(denied, case.denied, "{}: a DENY wins", case.name);
    }
    println!("{}", outcomes.join("\n"));
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acls_are_listed_hidden_and_implied() {
    let broker = secured_broker(true).await;
    let mut admin = login(&broker, "admin", "admin-secret").await;
    crate::support::topic_with_records(&mut admin, "visible", &[]).await;
    crate::support::topic_with_records(&mut admin, "hidden", &[]).await;
    let read = Case {
        name: "",
        resource_type: TOPIC,
        resource: "visible",
        operation: READ,
        denied: 0,
        requires: None,
    };
    create_acl(&mut admin, &read, 3, "visible", 3).await;

    // READ implies DESCRIBE: Metadata of every topic shows only "visible".
    let mut alice = login(&broker, "alice", "alice-secret").await;
    let metadata: MetadataResponse = alice
        .request(
            ApiKey::Metadata,
            10,
            &MetadataRequest::default()
                .with_topics(None)
                .with_include_topic_authorized_operations(true),
        )
        .await;
    let names: Vec<String> = metadata
        .topics
        .iter()
        .map(|t| t.name.as_ref().map(|n| n.to_string()).unwrap_or_default())
        .collect();
    assert_eq!(names, ["visible"]);
    assert_eq!(
        metadata.topics[0].topic_authorized_operations,
        (1 << 3) | (1 << 8),
        "READ and the DESCRIBE it implies"
    );

    // DescribeAcls lists it; without an authorizer the ACL APIs are off.
    let described: DescribeAclsResponse = admin
        .request(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(described.error_code, 0);
    assert_eq!(described.resources.len(), 1);
    assert_eq!(described.resources[0].resource_name.as_str(), "visible");
    // alice may not list ACLs.
    let denied: DescribeAclsResponse = alice
        .request(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(denied.error_code, CLUSTER_DENIED);
    broker.shutdown().await;

    let open = secured_broker(false).await;
    let mut client = open.connect().await;
    let off: DescribeAclsResponse = client
        .request(
            ApiKey::DescribeAcls,
            3,
            &DescribeAclsRequest::default()
                .with_resource_name_filter(None)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_resource_type_filter(1)
                .with_pattern_type_filter(1)
                .with_operation(1)
                .with_permission_type(1),
        )
        .await;
    assert_eq!(off.error_code, 54, "SECURITY_DISABLED");
    open.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_unless_reauthenticated() {
    let broker = TestBroker::start_with(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        ),
        ("sasl.enabled.mechanisms", "PLAIN"),
        (
            "listener.name.sasl_plaintext.plain.sasl.jaas.config",
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_alice=\"alice-secret\" user_bob=\"bob-secret\";",
        ),
        (
            "listener.name.sasl_plaintext.connections.max.reauth.ms",
            "1500",
        ),
    ])
    .await;
    let sasl = broker.listener_addr("SASL_PLAINTEXT");
    let mut client = Client::connect(sasl).await;
    let login = client.sasl_plain("alice", "alice-secret").await;
    assert_eq!(login.error_code, 0);
    assert_eq!(login.session_lifetime_ms, 1500, "KIP-368 session lifetime");
    // Re-authentication (KIP-368) on the same connection renews the session.
    let again = client.sasl_plain("alice", "alice-secret").await;
    assert_eq!(again.error_code, 0);
    assert_eq!(again.session_lifetime_ms, 1500);
    let metadata: MetadataResponse = client
        .request(ApiKey::Metadata, 12, &metadata_request(None))
        .await;
    assert_eq!(metadata.brokers.len(), 1);
    // Another principal on re-authentication is refused, and closes.
    let other = client.sasl_plain("bob", "bob-secret").await;
    assert_eq!(other.error_code, 58);
    client
        .expect_closed("a principal change on re-authentication")
        .await;

    // An expired session: the next request closes the connection.
    let mut client = Client::connect(sasl).await;
    assert_eq!(
        client.sasl_plain("alice", "alice-secret").await.error_code,
        0
    );
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let id = client.correlation_id();
    client
        .send_frame(&crate::support::request_frame(
            ApiKey::Metadata,
            12,
            id,
            &metadata_request(None),
        ))
        .await;
    client
        .expect_closed("a request after the session expired")
        .await;
    broker.shutdown().await;
}
