//! The metrics listener (`--metrics-listen`): a minimal HTTP/1.1 server
//! with two pages, both read fresh on each request.
//!
//! - `/metrics`: Prometheus' text format, named as the Prometheus JMX
//!   exporter's Kafka rules name Kafka's MBeans
//!   (`kafka_server_brokertopicmetrics_messagesin_total{topic="orders"}`)
//!   and as kafka-exporter names its series
//!   (`kafka_consumergroup_lag{consumergroup="billing",topic="orders",partition="0"}`),
//!   so existing Kafka dashboards read them unchanged. Counters come from
//!   [`crate::metrics::Metrics`]; gauges (log sizes and offsets, partition
//!   health, group lag, coordinator load) from the broker's state.
//! - `/health`: 200 while the broker serves requests, 503 once it stops.
//!
//! Requests larger than a few KiB, or slower than a few seconds, are
//! dropped; a scrape never blocks a client request.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tracing::{debug, warn};

use crate::broker::Broker;
use crate::metrics::LATENCY_BUCKETS_MS;

/// The largest request head read.
const MAX_REQUEST: usize = 8 << 10;
/// How long a client has to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the metrics listener until `shutdown` turns true.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let mut stopped = shutdown.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopped.changed() => return,
        };
        match accepted {
            Ok((stream, _)) => {
                tokio::spawn(answer(stream, broker.clone(), shutdown.clone()));
            }
            Err(e) => {
                warn!(cause = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn answer(mut stream: TcpStream, broker: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    let mut head = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    })
    .await;
    if !matches!(read, Ok(Ok(()))) {
        return;
    }
    let line = head
        .split(|b| *b == b'\n')
        .next()
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let broker = broker.clone();
            match tokio::task::spawn_blocking(move || render(&broker)).await {
                Ok(body) => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", body),
                Err(_) => (
                    "500 Internal Server Error",
                    "text/plain",
                    "error\n".to_owned(),
                ),
            }
        }
        ("GET", "/health") if !*shutdown.borrow() => ("200 OK", "text/plain", "ok\n".to_owned()),
        ("GET", "/health") => (
            "503 Service Unavailable",
            "text/plain",
            "stopping\n".to_owned(),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_owned()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n".to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if let Err(e) = stream.write_all(response.as_bytes()).await {
        debug!(cause = %e, "metrics client went away");
    }
    let _ = stream.shutdown().await;
}

/// A label value in Prometheus' text format.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Writes a family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The `/metrics` page.
pub fn render(broker: &Broker) -> String {
    let mut out = String::with_capacity(16 << 10);
    topic_traffic(broker, &mut out);
    requests(broker, &mut out);
    let connections = broker.metrics().connections();
    family(
        &mut out,
        "kafka_server_socket_server_metrics_connection_count",
        "gauge",
        "Open client connections per listener.",
    );
    for (listener, count) in connections {
        let _ = writeln!(
            out,
            "kafka_server_socket_server_metrics_connection_count{{listener=\"{}\"}} {count}",
            label(&listener)
        );
    }
    partitions(broker, &mut out);
    groups(broker, &mut out);
    out
}

fn topic_traffic(broker: &Broker, out: &mut String) {
    let counters = broker.metrics().topics();
    let known: Vec<_> = counters
        .into_iter()
        .filter(|(name, _)| {
            let exists = broker.topics.get(name).is_some();
            if !exists {
                broker.metrics().forget_topic(name);
            }
            exists
        })
        .collect();
    let series = [
        (
            "kafka_server_brokertopicmetrics_messagesin_total",
            "Records appended by producers.",
            0,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesin_total",
            "Record bytes appended by producers.",
            1,
        ),
        (
            "kafka_server_brokertopicmetrics_bytesout_total",
            "Record bytes sent to consumers.",
            2,
        ),
    ];
    for (name, help, which) in series {
        family(out, name, "counter", help);
        let mut all = 0u64;
        for (topic, c) in &known {
            let value = match which {
                0 => c.messages_in.load(Ordering::Relaxed),
                1 => c.bytes_in.load(Ordering::Relaxed),
                _ => c.bytes_out.load(Ordering::Relaxed),
            };
            all += value;
            let _ = writeln!(out, "{name}{{topic=\"{}\"}} {value}", label(topic));
        }
        let _ = writeln!(out, "{name} {all}");
    }
}

fn requests(broker: &Broker, out: &mut String) {
    let requests = broker.metrics().requests();
    let name_of =
        |key: i16| ApiKey::try_from(key).map_or_else(|_| key.to_string(), |k| format!("{k:?}"));
    family(
        out,
        "kafka_network_requestmetrics_requests_total",
        "counter",
        "Requests answered, per API.",
    );
    for (key, c) in &requests {
        let _ = writeln!(
            out,
            "kafka_network_requestmetrics_requests_total{{request=\"{}\"}} {}",
            name_of(*key),
            c.count.load(Ordering::Relaxed)
        );
    }
    let name = "kafka_network_requestmetrics_totaltimems";
    family(
        out,
        name,
        "histogram",
        "Time from a request's arrival to its response being written, in ms, per API.",
    );
    for (key, c) in &requests {
        let request = name_of(*key);
        let mut cumulative = 0u64;
        for (bound, bucket) in LATENCY_BUCKETS_MS.iter().zip(c.buckets.iter()) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{request=\"{request}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = c.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{request=\"{request}\",le=\"+Inf\"}} {count}"
        );
        // Microseconds as fractional milliseconds.
        let total_ms = c.total_us.load(Ordering::Relaxed) as f64 / 1000.0;
        let _ = writeln!(out, "{name}_sum{{request=\"{request}\"}} {total_ms}");
        let _ = writeln!(out, "{name}_count{{request=\"{request}\"}} {count}");
    }
}

/// Per-partition log figures and the replica manager's and controller's
/// partition counts.
fn partitions(broker: &Broker, out: &mut String) {
    let node_id = broker.node_id();
    let in_cluster = broker.in_quorum();
    let mut logs = String::new();
    let mut hosted = 0u64;
    let mut leading = 0u64;
    let mut under_replicated = 0u64;
    let mut offline = 0u64;
    let mut topic_partitions = String::new();
    let rows = [
        (
            "kafka_log_log_size",
            "Bytes of a partition's segment files.",
        ),
        (
            "kafka_log_log_logstartoffset",
            "A partition's log start offset.",
        ),
        (
            "kafka_log_log_logendoffset",
            "A partition's log end offset.",
        ),
        (
            "kafka_topic_partition_current_offset",
            "A partition's high watermark (kafka-exporter).",
        ),
        (
            "kafka_topic_partition_oldest_offset",
            "A partition's log start offset (kafka-exporter).",
        ),
    ];
    let mut values: Vec<Vec<String>> = vec![Vec::new(); rows.len()];
    for meta in broker.topics.all() {
        let _ = writeln!(
            topic_partitions,
            "kafka_topic_partitions{{topic=\"{}\"}} {}",
            label(&meta.name),
            meta.partition_count()
        );
        for (p, replicas) in (0..).zip(&meta.partitions) {
            let state = broker.partition_state(&meta.name, p);
            if state.as_ref().is_none_or(|s| s.leader < 0) {
                offline += 1;
            }
            if in_cluster && !replicas.contains(&node_id) {
                continue;
            }
            hosted += 1;
            if let Some(state) = state.as_ref().filter(|s| s.leader == node_id) {
                leading += 1;
                if state.isr.len() < replicas.len() {
                    under_replicated += 1;
                }
            }
            let Some(log) = broker.logs.get(&meta.name, p) else {
                continue;
            };
            let offsets = log.offsets();
            let labels = format!("topic=\"{}\",partition=\"{p}\"", label(&meta.name));
            let figures = [
                i64::try_from(log.size_bytes()).unwrap_or(i64::MAX),
                offsets.log_start_offset,
                offsets.log_end_offset,
                offsets.high_watermark,
                offsets.log_start_offset,
            ];
            for ((row, values), figure) in rows.iter().zip(values.iter_mut()).zip(figures) {
                values.push(format!("{}{{{labels}}} {figure}", row.0));
            }
        }
    }
    for (row, values) in rows.iter().zip(values) {
        family(&mut logs, row.0, "gauge", row.1);
        for line in values {
            logs.push_str(&line);
            logs.push('\n');
        }
    }
    out.push_str(&logs);
    family(
        out,
        "kafka_topic_partitions",
        "gauge",
        "Partitions of a topic (kafka-exporter).",
    );
    out.push_str(&topic_partitions);
    // Live brokers and whether this node is the active controller (a
    // single node is both broker and controller).
    let (brokers, active) = match broker.quorum() {
        Some(quorum) => {
            let image = quorum.image();
            let live = image
                .brokers
                .keys()
                .filter(|id| image.is_live(**id))
                .count();
            (
                u64::try_from(live).unwrap_or(0),
                quorum.leader() == Some(node_id),
            )
        }
        None => (1, true),
    };
    if !active {
        // Kafka's active controller alone reports offline partitions.
        offline = 0;
    }
    let gauges = [
        (
            "kafka_server_replicamanager_partitioncount",
            "Partitions with a replica on this broker.",
            hosted,
        ),
        (
            "kafka_server_replicamanager_leadercount",
            "Partitions this broker leads.",
            leading,
        ),
        (
            "kafka_server_replicamanager_underreplicatedpartitions",
            "Partitions this broker leads whose ISR is smaller than their replica set.",
            under_replicated,
        ),
        (
            "kafka_controller_kafkacontroller_offlinepartitionscount",
            "Partitions without a live leader.",
            offline,
        ),
        (
            "kafka_controller_kafkacontroller_activecontrollercount",
            "1 on the active controller.",
            u64::from(active),
        ),
        ("kafka_brokers", "Live brokers (kafka-exporter).", brokers),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}

/// Consumer group offsets and lag as kafka-exporter reports them, for the
/// groups this broker coordinates, and the group coordinator's load.
fn groups(broker: &Broker, out: &mut String) {
    let listed = broker.groups.list().unwrap_or_default();
    let mut current = String::new();
    let mut lag = String::new();
    let mut lag_sum = String::new();
    let mut offsets = 0u64;
    for (group, _, _) in &listed {
        let Ok(committed) = broker.groups.group_offsets(group) else {
            continue;
        };
        let mut sums: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for ((topic, partition), offset) in &committed {
            offsets += 1;
            let labels = format!(
                "consumergroup=\"{}\",topic=\"{}\",partition=\"{partition}\"",
                label(group),
                label(topic)
            );
            let _ = writeln!(
                current,
                "kafka_consumergroup_current_offset{{{labels}}} {}",
                offset.offset
            );
            let Some(log) = broker.logs.get(topic, *partition) else {
                continue;
            };
            let behind = (log.offsets().high_watermark - offset.offset).max(0);
            let _ = writeln!(lag, "kafka_consumergroup_lag{{{labels}}} {behind}");
            *sums.entry(topic.as_str()).or_default() += behind;
        }
        for (topic, sum) in sums {
            let _ = writeln!(
                lag_sum,
                "kafka_consumergroup_lag_sum{{consumergroup=\"{}\",topic=\"{}\"}} {sum}",
                label(group),
                label(topic)
            );
        }
    }
    family(
        out,
        "kafka_consumergroup_current_offset",
        "gauge",
        "A group's committed offset of a partition (kafka-exporter).",
    );
    out.push_str(&current);
    family(
        out,
        "kafka_consumergroup_lag",
        "gauge",
        "High watermark minus the group's committed offset (kafka-exporter).",
    );
    out.push_str(&lag);
    family(
        out,
        "kafka_consumergroup_lag_sum",
        "gauge",
        "A group's lag summed over a topic's partitions (kafka-exporter).",
    );
    out.push_str(&lag_sum);
    let gauges = [
        (
            "kafka_coordinator_group_groupmetadatamanager_numgroups",
            "Groups this broker coordinates.",
            u64::try_from(listed.len()).unwrap_or(0),
        ),
        (
            "kafka_coordinator_group_groupmetadatamanager_numoffsets",
            "Committed offsets of the groups this broker coordinates.",
            offsets,
        ),
    ];
    for (name, help, value) in gauges {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
}
