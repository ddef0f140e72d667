//! The `strom` binary as an operator meets it: bad flags, a taken port, an
//! unwritable data dir, a data dir of a newer store format and unknown
//! config keys exit non-zero with one clear line; SIGTERM stops it cleanly with exit code 0.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const STROM: &str = env!("CARGO_BIN_EXE_strom");

fn run(args: &[&str]) -> Output {
    Command::new(STROM)
        .args(args)
        .env_clear()
        .output()
        .expect("runs strom")
}

/// Asserts a failed start with exactly one line on stderr containing `needle`.
fn assert_one_line_failure(output: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "exited 0; stderr: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr:?}");
}

#[test]
fn bad_flag() {
    assert_one_line_failure(&run(&["--no-such-flag"]), "--no-such-flag");
    assert_one_line_failure(&run(&["--num-partitions", "many"]), "many");
}

#[test]
fn unknown_or_invalid_config() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data = data.to_str().expect("utf-8");
    assert_one_line_failure(
        &run(&["--data-dir", data, "--set", "no.such.key=1"]),
        "no.such.key",
    );
    assert_one_line_failure(
        &run(&["--data-dir", data, "--set", "num.partitions=0"]),
        "num.partitions",
    );
    let file = dir.path().join("server.properties");
    std::fs::write(&file, "num.partitions=2\nbogus.key=3\n").expect("write config");
    assert_one_line_failure(
        &run(&[
            "--data-dir",
            data,
            "--config",
            file.to_str().expect("utf-8"),
        ]),
        "bogus.key",
    );
}

#[test]
fn port_taken() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().expect("address").to_string();
    let dir = tempfile::tempdir().expect("temp dir");
    let output = run(&[
        "--listen",
        &address,
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, &address);
}

#[test]
fn unwritable_data_dir() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A regular file where the data dir should be: not creatable even as root.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").expect("write");
    let data = blocker.join("data");
    let output = run(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, "data dir");
}

#[test]
fn data_dir_of_a_newer_format() {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let db = sled::open(dir.path().join("meta")).expect("sled");
        db.insert(
            strom::store::FORMAT_KEY,
            strom::store::versioned(&(strom::store::FORMAT_VERSION + 1).to_be_bytes()),
        )
        .expect("insert");
        db.flush().expect("flush");
    }
    let output = run(&[
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        dir.path().to_str().expect("utf-8"),
    ]);
    assert_one_line_failure(&output, "written by a newer strom");
}

#[test]
fn sigterm_stops_cleanly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(STROM)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            dir.path().to_str().expect("utf-8"),
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let started = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|line| line.contains("strom started"));
    assert!(started.is_some(), "no start line");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(Instant::now() < deadline, "strom did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "exit status {exit}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("strom stopped")), "{rest:?}");
}

/// A memory figure of process `pid` from /proc (`VmRSS`, `VmData`), in KiB.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A Kafka request frame (size prefix included): header v1 (api key,
/// version, correlation id, client id "flood"), then `body`.
fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&7i32.to_be_bytes());
    out.extend_from_slice(&5i16.to_be_bytes());
    out.extend_from_slice(b"flood");
    out.extend_from_slice(body);
    let mut framed = u32::try_from(out.len())
        .expect("small")
        .to_be_bytes()
        .to_vec();
    framed.extend_from_slice(&out);
    framed
}

fn string(s: &str) -> Vec<u8> {
    let mut out = u16::try_from(s.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(s.as_bytes());
    out
}

/// Reads one response frame; `None` when the broker closed the connection.
fn read_response(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).ok()?;
    let mut body = vec![0u8; u32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).ok()?;
    Some(body)
}

/// Unauthenticated clients on a SASL listener (announcing frames they never
/// send, sending frames over `sasl.server.max.receive.size`, failing logins
/// over and over) cost the broker no lasting memory, and a client on
/// another listener is served throughout.
#[test]
fn unauthenticated_floods_leave_memory_flat() {
    use std::io::Write;
    use std::net::TcpStream;
    let dir = tempfile::tempdir().expect("temp dir");
    let (plain, sasl) = (free_port(), free_port());
    let config = dir.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "listeners=PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}\n\
             sasl.enabled.mechanisms=PLAIN\n\
             listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice=\"alice-secret\";\n\
             connection.failed.authentication.delay.ms=0\n"
        ),
    )
    .expect("config");
    let mut child = Command::new(STROM)
        .args([
            "--config",
            config.to_str().expect("utf-8"),
            "--data-dir",
            dir.path().join("data").to_str().expect("utf-8"),
        ])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout");
    // Killed however the test ends.
    let _child = KillOnDrop(child);
    let mut lines = BufReader::new(stdout).lines();
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|line| line.contains("strom started")),
        "no start line"
    );
    std::thread::spawn(move || lines.for_each(drop));
    let served = |what: &str| {
        let mut client = TcpStream::connect(("127.0.0.1", plain)).expect("connect");
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        client.write_all(&frame(18, 0, &[])).expect("write");
        assert!(read_response(&mut client).is_some(), "ApiVersions {what}");
    };
    served("before the flood");
    let (rss_before, data_before) = (memory_kib(pid, "VmRSS"), memory_kib(pid, "VmData"));

    // 500 connections each announce a 500 KB frame (under the 512 KiB
    // limit) and send 1 KB of it, and stay open.
    let mut held = Vec::new();
    for _ in 0..500 {
        let mut stream = TcpStream::connect(("127.0.0.1", sasl)).expect("connect");
        stream.write_all(&500_000u32.to_be_bytes()).expect("size");
        stream.write_all(&[0u8; 1024]).expect("some bytes");
        held.push(stream);
    }
    // 500 frames over the limit and 500 failed logins, each closed.
    for i in 0..1000 {
        let mut stream = TcpStream::connect(("127.0.0.1", sasl)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        if i % 2 == 0 {
            let _ = stream.write_all(&10_000_000u32.to_be_bytes());
            let _ = stream.write_all(&[0u8; 4096]);
        } else {
            stream
                .write_all(&frame(17, 1, &string("PLAIN")))
                .expect("handshake");
            assert!(read_response(&mut stream).is_some(), "handshake answered");
            let token = b"\0alice\0wrong";
            let mut body = u32::try_from(token.len())
                .expect("short")
                .to_be_bytes()
                .to_vec();
            body.extend_from_slice(token);
            stream
                .write_all(&frame(36, 0, &body))
                .expect("authenticate");
            assert!(read_response(&mut stream).is_some(), "failure answered");
        }
        assert!(
            read_response(&mut stream).is_none(),
            "connection {i} closed by the broker"
        );
    }
    served("during the flood");
    let data_during = memory_kib(pid, "VmData");
    drop(held);
    served("after the flood");
    // The held connections' tasks end once the broker reads their EOF.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rss_after = loop {
        let rss = memory_kib(pid, "VmRSS");
        if rss < rss_before + 32 * 1024 || Instant::now() > deadline {
            break rss;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "strom VmData {data_before} KiB before, {data_during} KiB with 500 announced 500 KB \
         frames held open; VmRSS {rss_before} KiB before, {rss_after} KiB after 1500 \
         hostile connections"
    );
    // Reserving the announced frames would map 250 MB.
    assert!(
        data_during < data_before + 64 * 1024,
        "VmData grew from {data_before} KiB to {data_during} KiB"
    );
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}

/// A child process killed (and reaped) when dropped.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts strom with `env` as its whole environment and no flags, waits for
/// its start line, and returns every broker config of node 1 as
/// DescribeConfigs reports it (value, whether a static broker config),
/// then stops it; under `<warnings>` the log's lines about skipped keys.
fn configs_from_env(
    env: &[(String, String)],
    bootstrap: &str,
) -> std::collections::HashMap<String, (Option<String>, bool)> {
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;
    use rdkafka::ClientConfig;
    let mut child = Command::new(STROM)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn strom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let started = lines.by_ref().map_while(Result::ok).find(|line| {
        seen.push(line.clone());
        line.contains("strom started")
    });
    if started.is_none() {
        let _ = child.kill();
        panic!("strom did not start from its environment: {seen:#?}");
    }
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let described = runtime.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .expect("admin client");
        admin
            .describe_configs(
                [&ResourceSpecifier::Broker(1)],
                &AdminOptions::new().request_timeout(Some(Duration::from_secs(20))),
            )
            .await
    });
    let _ = child.kill();
    let _ = child.wait();
    let described = described.expect("describe configs");
    let resource = described[0].as_ref().expect("broker resource");
    let warnings: Vec<String> = seen
        .into_iter()
        .chain(lines.map_while(Result::ok))
        .filter(|l| l.contains("not a broker setting"))
        .collect();
    let mut configs: std::collections::HashMap<_, _> = resource
        .entries
        .iter()
        .map(|e| {
            let fixed = matches!(e.source, rdkafka::admin::ConfigSource::StaticBroker);
            (e.name.clone(), (e.value.clone(), fixed))
        })
        .collect();
    configs.insert("<warnings>".into(), (Some(warnings.join("\n")), false));
    configs
}

/// Asserts that `variable` (`prefix` + the key in upper snake case) set
/// its key to `value` as a static broker config.
fn assert_reached(
    configs: &std::collections::HashMap<String, (Option<String>, bool)>,
    variable: &str,
    prefix: &str,
    value: &str,
) {
    let key = variable
        .trim_start_matches(prefix)
        .to_ascii_lowercase()
        .replace('_', ".");
    let (got, fixed) = configs
        .get(&key)
        .unwrap_or_else(|| panic!("{key} not described"));
    assert_eq!(got.as_deref(), Some(value), "{variable} → {key}");
    assert!(*fixed, "{key}: not a static broker config");
}

/// A docker-compose file for the apache/kafka, Confluent or Bitnami images
/// configures strom unchanged: every `KAFKA_*` (or `KAFKA_CFG_*`) key
/// reaches the config (DescribeConfigs: the value, as a static broker
/// config); the images' JVM variables and keys no broker knows are skipped
/// with a warning.
#[test]
fn kafka_container_environment_configures_the_broker() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, controller) = (free_port(), free_port());
    let data = dir.path().join("apache").display().to_string();
    let pairs = |pairs: &[(&str, String)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    };
    // apache/kafka's KRaft compose: a combined node, a quorum of one.
    let apache = pairs(&[
        ("KAFKA_NODE_ID", "1".into()),
        ("KAFKA_PROCESS_ROLES", "broker,controller".into()),
        (
            "KAFKA_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
        ),
        (
            "KAFKA_ADVERTISED_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
        ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER".into()),
        (
            "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
            "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT".into(),
        ),
        (
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            format!("1@127.0.0.1:{controller}"),
        ),
        ("KAFKA_LOG_DIRS", data),
        ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "1".into()),
        ("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1".into()),
        ("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS", "0".into()),
        ("KAFKA_NUM_PARTITIONS", "3".into()),
        ("KAFKA_LOG_RETENTION_HOURS", "5".into()),
        ("KAFKA_HEAP_OPTS", "-Xmx1G -Xms1G".into()),
        ("KAFKA_JMX_PORT", "9101".into()),
        ("KAFKA_CONFLUENT_SUPPORT_METRICS_ENABLE", "false".into()),
    ]);
    let configs = configs_from_env(&apache, &format!("127.0.0.1:{port}"));
    for (variable, value) in &apache {
        if [
            "KAFKA_HEAP_OPTS",
            "KAFKA_JMX_PORT",
            "KAFKA_CONFLUENT_SUPPORT_METRICS_ENABLE",
        ]
        .contains(&variable.as_str())
        {
            continue;
        }
        assert_reached(&configs, variable, "KAFKA_", value);
    }
    let warnings = configs["<warnings>"].0.clone().unwrap_or_default();
    assert!(
        warnings.contains("KAFKA_CONFLUENT_SUPPORT_METRICS_ENABLE"),
        "no warning for the unknown key: {warnings}"
    );
    assert!(!warnings.contains("HEAP"), "{warnings}");

    // Bitnami's: KAFKA_CFG_ keys only; its own KAFKA_* settings are not keys.
    let port = free_port();
    let bitnami = pairs(&[
        (
            "KAFKA_CFG_LISTENERS",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
        (
            "KAFKA_CFG_LOG_DIRS",
            dir.path().join("bitnami").display().to_string(),
        ),
        ("KAFKA_CFG_NUM_PARTITIONS", "4".into()),
        ("KAFKA_CFG_AUTO_CREATE_TOPICS_ENABLE", "false".into()),
        ("KAFKA_KRAFT_CLUSTER_ID", "abcdefghijklmnopqrstuv".into()),
        ("KAFKA_CLIENT_USERS", "user".into()),
    ]);
    let configs = configs_from_env(&bitnami, &format!("127.0.0.1:{port}"));
    for (variable, value) in bitnami.iter().filter(|(k, _)| k.starts_with("KAFKA_CFG_")) {
        assert_reached(&configs, variable, "KAFKA_CFG_", value);
    }
    assert_eq!(
        configs["<warnings>"].0.as_deref(),
        Some(""),
        "Bitnami's own variables warned about"
    );
}

/// `--log-format json` writes one JSON object per line (timestamp, level,
/// message, fields); at debug each request is logged with the client id,
/// the API's name and its latency.
#[test]
fn json_logs_name_each_request() {
    use std::io::Write;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut child = Command::new(STROM)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir.path())
        .args(["--log-format", "json", "--log-level", "debug"])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen: Vec<serde_json::Value> = Vec::new();
    let mut next = |seen: &mut Vec<serde_json::Value>| -> serde_json::Value {
        let line = lines
            .next()
            .expect("a log line")
            .expect("readable log line");
        let value: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        seen.push(value.clone());
        value
    };
    while next(&mut seen)["message"] != "strom started" {}
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    // ApiVersions v0 (client id "flood").
    stream.write_all(&frame(18, 0, &[])).expect("send");
    assert!(
        read_response(&mut stream).is_some(),
        "no ApiVersions answer"
    );
    let request = loop {
        let value = next(&mut seen);
        if value["message"] == "request" {
            break value;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(request["level"], "DEBUG", "{request}");
    assert_eq!(request["client_id"], "flood", "{request}");
    assert_eq!(request["api"], "ApiVersions", "{request}");
    assert!(request["latency_us"].is_u64(), "{request}");
    assert!(
        seen.iter()
            .all(|v| v["timestamp"].is_string() && v["level"].is_string()),
        "{seen:#?}"
    );
}

/// One HTTP GET over a fresh connection: the status line and the body.
fn http_get(address: &str, path: &str) -> Option<(String, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: strom\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    Some((head.lines().next()?.to_owned(), body.to_owned()))
}

/// The value of the series `name{labels}` (labels exactly as written, or
/// none) in a Prometheus text page.
fn series(page: &str, name_and_labels: &str) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(name_and_labels)?
            .strip_prefix(' ')?
            .parse()
            .ok()
    })
}

/// `--metrics-listen`: the page counts what the clients did (records and
/// bytes produced and consumed, requests, connections), a group's lag is
/// the records it has not committed and goes to 0 once it catches up, and
/// `/health` answers 200 while the broker serves and nothing once it stopped.
#[test]
fn metrics_count_what_clients_did() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
    use rdkafka::{ClientConfig, Message};
    let dir = tempfile::tempdir().expect("temp dir");
    let (port, metrics) = (free_port(), free_port());
    let bootstrap = format!("127.0.0.1:{port}");
    let metrics = format!("127.0.0.1:{metrics}");
    let mut child = Command::new(STROM)
        .args([
            "--listen",
            &bootstrap,
            "--metrics-listen",
            &metrics,
            "--data-dir",
        ])
        .arg(dir.path())
        .args(["--set", "group.initial.rebalance.delay.ms=0"])
        .env_clear()
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn strom");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    // The metrics listener is bound after the start line.
    assert!(
        lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("serving /metrics and /health")),
        "no metrics listener line"
    );
    let (status, body) = http_get(&metrics, "/health").expect("health");
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", "ok\n")
    );

    const RECORDS: usize = 40;
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    let payload = [b'x'; 100];
    for i in 0..RECORDS {
        let key = format!("k{i}");
        producer
            .send(BaseRecord::to("metered").key(&key).payload(&payload[..]))
            .map_err(|(e, _)| e)
            .expect("send");
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
    let page = http_get(&metrics, "/metrics").expect("metrics").1;
    assert_eq!(
        series(
            &page,
            r#"kafka_server_brokertopicmetrics_messagesin_total{topic="metered"}"#
        ),
        Some(RECORDS as f64),
        "{page}"
    );
    let bytes_in = series(
        &page,
        r#"kafka_server_brokertopicmetrics_bytesin_total{topic="metered"}"#,
    )
    .expect("bytes in");
    assert!(bytes_in >= (RECORDS * 100) as f64, "{bytes_in}");
    assert!(series(
        &page,
        r#"kafka_network_requestmetrics_requests_total{request="Produce"}"#
    )
    .is_some_and(|n| n >= 1.0));
    assert!(series(
        &page,
        r#"kafka_network_requestmetrics_totaltimems_count{request="Produce"}"#
    )
    .is_some_and(|n| n >= 1.0));
    assert!(
        series(
            &page,
            r#"kafka_server_socket_server_metrics_connection_count{listener="PLAINTEXT"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "the producer's connection"
    );
    assert_eq!(
        series(
            &page,
            r#"kafka_log_log_logendoffset{topic="metered",partition="0"}"#
        ),
        Some(RECORDS as f64)
    );

    // A group reads everything but commits only half: its lag is the rest.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "billing")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["metered"]).expect("subscribe");
    let mut read = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while read.len() < RECORDS {
        assert!(Instant::now() < deadline, "read only {}", read.len());
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            read.push(message.expect("message").offset());
        }
    }
    let mut half = rdkafka::TopicPartitionList::new();
    half.add_partition_offset("metered", 0, rdkafka::Offset::Offset((RECORDS / 2) as i64))
        .expect("offset");
    consumer
        .commit(&half, CommitMode::Sync)
        .expect("commit half");
    let lag = r#"kafka_consumergroup_lag{consumergroup="billing",topic="metered",partition="0"}"#;
    let page = http_get(&metrics, "/metrics").expect("metrics").1;
    assert_eq!(series(&page, lag), Some((RECORDS / 2) as f64), "{page}");
    let bytes_out = series(
        &page,
        r#"kafka_server_brokertopicmetrics_bytesout_total{topic="metered"}"#,
    )
    .expect("bytes out");
    assert!(bytes_out >= (RECORDS * 100) as f64, "{bytes_out}");
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit all");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = http_get(&metrics, "/metrics").expect("metrics").1;
        if series(&page, lag) == Some(0.0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lag stays {:?}",
            series(&page, lag)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(consumer);
    drop(producer);

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "{exit}");
    assert!(
        http_get(&metrics, "/health").is_none_or(|(status, _)| status != "HTTP/1.1 200 OK"),
        "healthy after stopping"
    );
}
