//! Shared helpers for the byte-level conformance tests: [`TestBroker`] starts
//! an in-process strom on 127.0.0.1 with an OS-chosen port and a temporary
//! data dir; [`Client`] writes raw frames (i32 size + request header + body)
//! and reads raw frames back. Every read and write runs under [`DEADLINE`],
//! so a broker that does not answer fails the test instead of hanging it.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any single network step may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The largest response frame the client accepts (a sanity bound).
const MAX_RESPONSE: usize = 64 * 1024 * 1024;

/// A protocol string field holding `s`.
pub fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// The client id every request built here carries.
pub const CLIENT_ID: &str = "protocol-tests";

/// A broker running inside the test process, with its own data dir.
pub struct TestBroker {
    running: Option<strom::RunningBroker>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TestBroker {
    /// A broker with every setting at its default.
    pub async fn start() -> Self {
        Self::start_with(&[]).await
    }

    /// A broker with extra `(key, value)` settings applied before start.
    pub async fn start_with(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = strom::BrokerConfig::new();
        config
            .set("listeners", "PLAINTEXT://127.0.0.1:0", "test")
            .expect("listeners");
        config
            .set("log.dirs", dir.path().to_str().expect("utf-8 path"), "test")
            .expect("log.dirs");
        for (key, value) in settings {
            config
                .set(key, value, "test")
                .unwrap_or_else(|e| panic!("setting {key}={value}: {e}"));
        }
        let running = tokio::time::timeout(DEADLINE, strom::RunningBroker::start(config))
            .await
            .expect("broker start timed out")
            .expect("broker starts");
        let addr = running.local_addr();
        assert!(addr.ip().is_loopback(), "bound to {addr}");
        assert_ne!(addr.port(), 0, "an OS-chosen port");
        Self {
            running: Some(running),
            addr,
            _dir: dir,
        }
    }

    /// The address the broker listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A new client connection.
    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// The bound address of the client listener `name`.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.running
            .as_ref()
            .and_then(|r| r.listener_addr(name))
            .unwrap_or_else(|| panic!("no listener {name}"))
    }

    /// Stops the broker; it must stop within the deadline.
    pub async fn shutdown(mut self) {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(DEADLINE, running.shutdown())
                .await
                .expect("broker shutdown timed out")
                .expect("broker shuts down cleanly");
        }
    }
}

/// The bytes of one request frame without its size prefix: header, then body.
pub fn request_frame(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &impl Encodable,
) -> BytesMut {
    let mut buf = BytesMut::new();
    request_header(key as i16, version, correlation_id)
        .encode(&mut buf, key.request_header_version(version))
        .expect("encode request header");
    body.encode(&mut buf, version)
        .unwrap_or_else(|e| panic!("encode {key:?} v{version} body: {e}"));
    buf
}

/// A request header for any api key (even one Kafka does not define).
pub fn request_header(key: i16, version: i16, correlation_id: i32) -> RequestHeader {
    RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)))
}

/// Prepends the i32 big-endian size to `frame`.
pub fn with_size_prefix(frame: &[u8]) -> Vec<u8> {
    let size = i32::try_from(frame.len()).expect("frame fits an i32");
    let mut out = Vec::with_capacity(frame.len() + 4);
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(frame);
    out
}

/// Decodes a response frame (without size prefix) of `key` at `version`:
/// the header at the key's response header version, then the body. Fails
/// the test if either part does not decode or bytes are left over.
pub fn decode_response<R: Decodable>(key: ApiKey, version: i16, frame: Bytes) -> (i32, R) {
    decode_response_at(key.response_header_version(version), version, frame)
        .unwrap_or_else(|e| panic!("{key:?} v{version} response: {e}"))
}

/// Decodes a response with an explicit header version; errors instead of
/// panicking so callers can add context.
pub fn decode_response_at<R: Decodable>(
    header_version: i16,
    version: i16,
    mut frame: Bytes,
) -> Result<(i32, R), String> {
    let header = ResponseHeader::decode(&mut frame, header_version)
        .map_err(|e| format!("header v{header_version} does not decode: {e}"))?;
    let body = R::decode(&mut frame, version)
        .map_err(|e| format!("body v{version} does not decode: {e}"))?;
    if frame.has_remaining() {
        return Err(format!(
            "{} bytes left after the v{version} body",
            frame.remaining()
        ));
    }
    Ok((header.correlation_id, body))
}

/// An ApiVersions request body that is valid at every version (v3+ needs
/// a client software name and version in Kafka's allowed characters).
pub fn api_versions_request() -> ApiVersionsRequest {
    ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("strom-protocol-tests"))
        .with_client_software_version(StrBytes::from_static_str("0.1.0"))
}

/// The advertised table as sorted `(key, min, max)` triples.
pub fn table(api_keys: &[ApiVersion]) -> Vec<(i16, i16, i16)> {
    let mut t: Vec<_> = api_keys
        .iter()
        .map(|a| (a.api_key, a.min_version, a.max_version))
        .collect();
    t.sort_unstable();
    t
}

/// strom's own table ([`strom::protocol::SUPPORTED_APIS`]) in the same form.
pub fn strom_table() -> Vec<(i16, i16, i16)> {
    let mut t: Vec<_> = strom::protocol::SUPPORTED_APIS
        .iter()
        .map(|a| (a.key as i16, a.min, a.max))
        .collect();
    t.sort_unstable();
    t
}

/// One client socket speaking raw Kafka frames.
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    /// Connects to `addr` within the deadline.
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(DEADLINE, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Writes `bytes` as they are (no size prefix is added).
    pub async fn write_raw(&mut self, bytes: &[u8]) {
        tokio::time::timeout(DEADLINE, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    /// Writes one frame: its size prefix, then `frame`.
    pub async fn send_frame(&mut self, frame: &[u8]) {
        self.write_raw(&with_size_prefix(frame)).await;
    }

    /// Closes the write half (the broker reads EOF after what was sent).
    pub async fn shutdown_write(&mut self) {
        tokio::time::timeout(DEADLINE, self.stream.shutdown())
            .await
            .expect("shutdown timed out")
            .expect("shutdown");
    }

    /// Reads one response frame (without its size prefix). Fails the test
    /// on EOF, a socket error or the deadline.
    pub async fn read_frame(&mut self) -> Bytes {
        self.try_read_frame()
            .await
            .expect("reading a response frame")
    }

    /// Reads one response frame; EOF or a socket error is returned, the
    /// deadline fails the test.
    pub async fn try_read_frame(&mut self) -> std::io::Result<Bytes> {
        let read = async {
            let mut size = [0u8; 4];
            self.stream.read_exact(&mut size).await?;
            let size = i32::from_be_bytes(size);
            let size = usize::try_from(size).map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("negative size {size}"),
                )
            })?;
            if size > MAX_RESPONSE {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("response of {size} bytes"),
                ));
            }
            let mut frame = vec![0u8; size];
            self.stream.read_exact(&mut frame).await?;
            Ok::<_, std::io::Error>(Bytes::from(frame))
        };
        tokio::time::timeout(DEADLINE, read)
            .await
            .expect("no response within the deadline")
    }

    /// Asserts that the broker closes this connection without answering:
    /// a read returns EOF or an error (e.g. a reset) within the deadline.
    pub async fn expect_closed(&mut self, what: &str) {
        let mut buf = [0u8; 256];
        match tokio::time::timeout(DEADLINE, self.stream.read(&mut buf)).await {
            Err(_) => panic!("{what}: connection still open after {DEADLINE:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => {}
            Ok(Ok(n)) => panic!(
                "{what}: expected the connection to be closed, got {n} bytes: {:02x?}",
                &buf[..n]
            ),
        }
    }

    /// A fresh correlation id for this connection.
    pub fn correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        id
    }

    /// Sends one request and decodes its response; checks the correlation id.
    pub async fn request<Req: Encodable, Resp: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &Req,
    ) -> Resp {
        let correlation_id = self.correlation_id();
        self.send_frame(&request_frame(key, version, correlation_id, body))
            .await;
        let frame = self.read_frame().await;
        let (echoed, response) = decode_response(key, version, frame);
        assert_eq!(
            echoed, correlation_id,
            "{key:?} v{version}: correlation id echoed"
        );
        response
    }

    /// SaslHandshake v1 (PLAIN) then SaslAuthenticate v2 with `user` and
    /// `password`: the authenticate response.
    pub async fn sasl_plain(
        &mut self,
        user: &str,
        password: &str,
    ) -> kafka_protocol::messages::SaslAuthenticateResponse {
        use kafka_protocol::messages::{
            SaslAuthenticateRequest, SaslHandshakeRequest, SaslHandshakeResponse,
        };
        let handshake: SaslHandshakeResponse = self
            .request(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default().with_mechanism(text("PLAIN")),
            )
            .await;
        assert_eq!(handshake.error_code, 0, "SaslHandshake PLAIN");
        self.request(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default()
                .with_auth_bytes(Bytes::from(format!("\0{user}\0{password}"))),
        )
        .await
    }

    /// ApiVersions v3 round trip: proves the connection is served normally.
    pub async fn api_versions_ok(&mut self) {
        let response: ApiVersionsResponse = self
            .request(ApiKey::ApiVersions, 3, &api_versions_request())
            .await;
        assert_eq!(response.error_code, 0, "ApiVersions error code");
        assert_eq!(
            table(&response.api_keys),
            strom_table(),
            "ApiVersions table"
        );
    }
}

/// The broker under test: an in-process strom, or with
/// `STROM_EXTERNAL_BOOTSTRAP=host:port` an external one (a real Kafka, to
/// check that strom's expected answers are Kafka's).
pub struct Target {
    _strom: Option<TestBroker>,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Unique per run, so topics on an external broker never clash.
    pub run: String,
}

impl Target {
    /// Starts strom, or resolves the external broker.
    pub async fn start() -> Self {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
            .to_string();
        if let Ok(external) = std::env::var("STROM_EXTERNAL_BOOTSTRAP") {
            let addr = tokio::net::lookup_host(external.as_str())
                .await
                .expect("resolve the external broker")
                .next()
                .expect("an address");
            return Self {
                _strom: None,
                addr,
                run,
            };
        }
        let strom = TestBroker::start().await;
        let addr = strom.addr();
        Self {
            _strom: Some(strom),
            addr,
            run,
        }
    }

    /// A new connection.
    pub async fn connect(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// `name` made unique to this run.
    pub fn topic(&self, name: &str) -> String {
        format!("{name}-{}", self.run)
    }
}

/// One uncompressed batch of `count` keyed records.
pub fn keyed_batch(count: i32) -> Bytes {
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i64::from(i),
            // A constant offset - sequence keeps the encoder to one batch.
            sequence: i - 1,
            timestamp: 0,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("v{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression: Compression::None,
    };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

/// Creates `name` (one partition, one replica, the topic `configs`) and
/// appends three keyed records, retrying the append while the new
/// partition has no leader yet (a Kafka broker learns its new partitions
/// from the controller).
pub async fn topic_with_records(client: &mut Client, name: &str, configs: &[(&str, &str)]) {
    use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        CreateTopicsRequest, CreateTopicsResponse, ProduceRequest, ProduceResponse, TopicName,
    };
    let create = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        CreatableTopicConfig::default()
                            .with_name(text(k))
                            .with_value(Some(text(v)))
                    })
                    .collect(),
            )])
        .with_timeout_ms(5000);
    let created: CreateTopicsResponse = client.request(ApiKey::CreateTopics, 7, &create).await;
    assert_eq!(created.topics[0].error_code, 0, "create {name}");
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(text(name)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(keyed_batch(3)))])]);
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let produced: ProduceResponse = client.request(ApiKey::Produce, 9, &produce).await;
        let code = produced.responses[0].partition_responses[0].error_code;
        if code == 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "produce to {name}: error {code}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
