//! Dynamic broker configs through IncrementalAlterConfigs (key 44) v1 and
//! DescribeConfigs (key 32) v4: the cluster-wide default scope (resource
//! name `""`), its precedence under a per-broker value, custom keys,
//! APPEND on a list key, and Kafka's INVALID_REQUEST refusals.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResourceResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, DescribeConfigsRequest, DescribeConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};

use crate::support::{text, Client, TestBroker};

const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

/// DescribeConfigs source numbers.
const DYNAMIC_BROKER: i8 = 2;
const DYNAMIC_DEFAULT: i8 = 3;
const DEFAULT: i8 = 5;

/// One IncrementalAlterConfigs on broker resource `name`; its error code and message.
async fn alter(client: &mut Client, name: &str, ops: &[(&str, i8, &str)]) -> (i16, String) {
    let configs = ops
        .iter()
        .map(|(key, op, value)| {
            AlterableConfig::default()
                .with_name(text(key))
                .with_config_operation(*op)
                .with_value(Some(text(value)))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text(name))
            .with_configs(configs),
    ]);
    let response: IncrementalAlterConfigsResponse = client
        .request(ApiKey::IncrementalAlterConfigs, 1, &request)
        .await;
    let result = &response.responses[0];
    let message = result
        .error_message
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    (result.error_code, message)
}

/// DescribeConfigs v4 of broker resource `name`, with synonyms.
async fn describe(client: &mut Client, name: &str) -> Vec<DescribeConfigsResourceResult> {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(BROKER)
            .with_resource_name(text(name))])
        .with_include_synonyms(true);
    let response: DescribeConfigsResponse =
        client.request(ApiKey::DescribeConfigs, 4, &request).await;
    assert_eq!(response.results[0].error_code, 0, "describe {name:?}");
    response.results[0].configs.clone()
}

fn entry<'a>(
    configs: &'a [DescribeConfigsResourceResult],
    key: &str,
) -> &'a DescribeConfigsResourceResult {
    configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} not described"))
}

fn value(config: &DescribeConfigsResourceResult) -> Option<&str> {
    config.value.as_ref().map(|v| v.as_str())
}

#[tokio::test]
async fn cluster_default_scope_and_precedence() {
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;

    // Nothing is set cluster-wide on a fresh broker.
    assert!(describe(&mut client, "").await.is_empty());

    let set = [
        ("message.max.bytes", SET, "2000000"),
        ("log.cleanup.policy", APPEND, "compact"),
        ("strom.test.custom", SET, "x"),
    ];
    assert_eq!(alter(&mut client, "", &set).await, (0, String::new()));
    let defaults = describe(&mut client, "").await;
    assert_eq!(defaults.len(), 3, "only the dynamic defaults are listed");
    let max = entry(&defaults, "message.max.bytes");
    assert_eq!(value(max), Some("2000000"));
    assert_eq!(max.config_source, DYNAMIC_DEFAULT);
    let policy = entry(&defaults, "log.cleanup.policy");
    assert_eq!(value(policy), Some("delete,compact"));
    // A key Kafka does not know is kept, typed UNKNOWN and treated as sensitive.
    let custom = entry(&defaults, "strom.test.custom");
    assert!(custom.is_sensitive && custom.value.is_none());
    assert_eq!(custom.config_type, 0);

    // A per-broker value wins over the cluster default; both are synonyms.
    assert_eq!(
        alter(&mut client, "1", &[("message.max.bytes", SET, "3000000")]).await,
        (0, String::new())
    );
    let node = describe(&mut client, "1").await;
    let max = entry(&node, "message.max.bytes");
    assert_eq!(value(max), Some("3000000"));
    assert_eq!(max.config_source, DYNAMIC_BROKER);
    let sources: Vec<i8> = max.synonyms.iter().map(|s| s.source).collect();
    assert_eq!(sources, [DYNAMIC_BROKER, DYNAMIC_DEFAULT, DEFAULT]);

    // A listener-prefixed key is per broker and typed like the key under it.
    assert_eq!(
        alter(
            &mut client,
            "1",
            &[(
                "listener.name.external.ssl.keystore.password",
                SET,
                "secret"
            )],
        )
        .await,
        (0, String::new())
    );
    let node = describe(&mut client, "1").await;
    let password = entry(&node, "listener.name.external.ssl.keystore.password");
    assert!(password.is_sensitive && password.value.is_none());
    assert_eq!(password.config_type, 9, "PASSWORD");

    // DELETE falls back to the next layer.
    assert_eq!(
        alter(&mut client, "1", &[("message.max.bytes", DELETE, "")]).await,
        (0, String::new())
    );
    let node = describe(&mut client, "1").await;
    assert_eq!(value(entry(&node, "message.max.bytes")), Some("2000000"));
    broker.shutdown().await;
}

#[tokio::test]
async fn refusals_are_invalid_request() {
    const INVALID_REQUEST: i16 = 42;
    let broker = TestBroker::start().await;
    let mut client = broker.connect().await;
    let cases: &[(&str, (&str, i8, &str), &str)] = &[
        (
            "1",
            ("num.partitions", SET, "3"),
            "Cannot update these configs dynamically: Set(num.partitions)",
        ),
        (
            "",
            ("sasl.kerberos.min.time.before.relogin", SET, "58000"),
            "Cannot update these configs at default cluster level, broker id must be specified: Set(sasl.kerberos.min.time.before.relogin)",
        ),
        (
            "1",
            ("ssl.keystore.location", SET, "/k.jks"),
            "These security configs can be dynamically updated only per-listener using the listener prefix: Set(ssl.keystore.location)",
        ),
        (
            "",
            ("listener.name.external.ssl.keystore.location", SET, "/k.jks"),
            "Cannot update these configs at default cluster level, broker id must be specified: Set(listener.name.external.ssl.keystore.location)",
        ),
        (
            "1",
            ("message.max.bytes", SET, "big"),
            "Invalid value big for configuration message.max.bytes: Not a number of type INT",
        ),
        (
            "7",
            ("message.max.bytes", SET, "1"),
            "Unexpected broker id, expected 1 or empty string, but received 7",
        ),
    ];
    for (name, op, message) in cases {
        assert_eq!(
            alter(&mut client, name, &[*op]).await,
            (INVALID_REQUEST, (*message).to_owned()),
            "{op:?} on broker {name:?}"
        );
    }
    assert!(describe(&mut client, "").await.is_empty());
    let node = describe(&mut client, "1").await;
    assert_eq!(entry(&node, "message.max.bytes").config_source, DEFAULT);
    broker.shutdown().await;
}

/// `max.connections` is dynamic: a connection held back by the limit is
/// served once the limit is raised.
#[tokio::test]
async fn max_connections_can_be_raised_while_running() {
    let broker = TestBroker::start_with(&[("max.connections", "1")]).await;
    let mut first = broker.connect().await;
    first.api_versions_ok().await;
    // The kernel completes the handshake; strom does not serve it yet.
    let mut second = broker.connect().await;
    let pending = tokio::spawn(async move {
        second.api_versions_ok().await;
        second
    });
    assert_eq!(
        alter(&mut first, "", &[("max.connections", SET, "2")]).await,
        (0, String::new())
    );
    let second = tokio::time::timeout(crate::support::DEADLINE, pending)
        .await
        .expect("the held connection is served within the deadline")
        .expect("second client");
    drop((first, second));
    broker.shutdown().await;
}
