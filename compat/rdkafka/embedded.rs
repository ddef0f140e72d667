//! The embedded broker as a user of strom-the-library writes a test: no
//! runtime of strom's to manage, a bootstrap address, stopped on drop. The
//! README shows this test.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Message};

#[test]
fn an_embedded_broker_serves_rdkafka() {
    let broker = strom::EmbeddedBroker::builder()
        .set("num.partitions", "1")
        .start()
        .expect("broker");

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .create()
        .expect("producer");
    producer
        .send(BaseRecord::to("greetings").key("k").payload("hello"))
        .map_err(|(e, _)| e)
        .expect("send");
    producer.flush(Duration::from_secs(20)).expect("flush");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap_servers())
        .set("group.id", "readers")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["greetings"]).expect("subscribe");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let message = loop {
        assert!(std::time::Instant::now() < deadline, "nothing consumed");
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            break message.expect("a message").detach();
        }
    };
    assert_eq!(message.payload(), Some(&b"hello"[..]));
    let dir = broker.data_dir().to_owned();
    drop(consumer);
    drop(broker);
    assert!(!dir.exists(), "the data dir outlived the broker");
}

/// Dropped inside a Tokio runtime (a `#[tokio::test]`), the broker stops
/// without the "cannot drop a runtime" panic.
#[tokio::test]
async fn an_embedded_broker_stops_inside_tokio() {
    let broker = strom::EmbeddedBroker::start().expect("broker");
    let bootstrap = broker.bootstrap_servers().to_owned();
    assert!(std::net::TcpStream::connect(&bootstrap).is_ok());
    drop(broker);
    assert!(
        std::net::TcpStream::connect(&bootstrap).is_err(),
        "still listening"
    );
}
