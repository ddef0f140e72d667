//! Group-coordinator load for scripts/bench.sh, speaking the Kafka protocol
//! (kafka-protocol crate) over raw TCP, so that strom and Apache Kafka are
//! driven by the same bytes. Three subcommands, each printing one JSON line:
//!
//! * `throughput`: `--clients` connections, each committing one offset for
//!   its own group and partition (FindCoordinator, then OffsetCommit v8 with
//!   generation -1 and no member id), waiting for the answer, committing the
//!   next offset, for `--seconds`; commits/s.
//! * `fill`: `--groups` groups x `--commits` commits each of one partition
//!   (offsets 1..=commits, so the last is `commits`), pipelined
//!   (`--depth` requests in flight) over `--connections` connections; a
//!   group's next commit is sent only after its previous one was answered,
//!   and a retriable error resends the same commit, so every group ends at
//!   offset `commits`.
//! * `ready -- CMD...`: spawns the broker command, then sends OffsetFetch v7
//!   for a sample of the filled groups (`--per-partition` groups for each of
//!   the 50 `__consumer_offsets` partitions, by Java's String.hashCode) until
//!   every one has answered without error with offset `commits`; the time
//!   from spawn to that moment. Then stops the broker (SIGTERM, wait).
//!
//!   cargo run --release --example commit_bench -- throughput --bootstrap 127.0.0.1:9092

use std::collections::{BTreeMap, VecDeque};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use clap::{Parser, Subcommand};
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::signal::unix::{signal, SignalKind};

const OFFSET_COMMIT_V: i16 = 8;
const OFFSET_FETCH_V: i16 = 7;
const FIND_COORDINATOR_V: i16 = 3;
const CREATE_TOPICS_V: i16 = 5;
/// Partitions of `__consumer_offsets` (Kafka's `offsets.topic.num.partitions`).
const OFFSETS_PARTITIONS: i32 = 50;

// Kafka error codes this tool tells apart.
const COORDINATOR_LOAD_IN_PROGRESS: i16 = 14;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const TOPIC_ALREADY_EXISTS: i16 = 36;

fn retriable(code: i16) -> bool {
    matches!(
        code,
        COORDINATOR_LOAD_IN_PROGRESS | COORDINATOR_NOT_AVAILABLE | NOT_COORDINATOR
    )
}

#[derive(Parser, Debug)]
#[command(about = "OffsetCommit throughput, history fill and restart-to-ready")]
struct Args {
    /// Broker address.
    #[arg(long, default_value = "127.0.0.1:9092", global = true)]
    bootstrap: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Synchronous commits from several clients, commits/s.
    Throughput {
        #[arg(long, default_value_t = 4)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Topic the offsets are for (created with one partition per client).
        #[arg(long, default_value = "commit-bench")]
        topic: String,
        /// Group names are PREFIX-<client>.
        #[arg(long, default_value = "commit-bench")]
        group_prefix: String,
    },
    /// Writes a commit history fast (pipelined).
    Fill {
        #[arg(long, default_value_t = 10_000)]
        groups: usize,
        /// Commits per group (offsets 1..=N).
        #[arg(long, default_value_t = 100)]
        commits: i64,
        #[arg(long, default_value_t = 4)]
        connections: usize,
        /// Requests in flight per connection.
        #[arg(long, default_value_t = 64)]
        depth: usize,
        #[arg(long, default_value = "commit-hist")]
        topic: String,
        /// Group names are PREFIX-<n>.
        #[arg(long, default_value = "hist")]
        group_prefix: String,
    },
    /// Spawns the broker and measures spawn -> OffsetFetch answers right.
    Ready {
        #[arg(long, default_value_t = 10_000)]
        groups: usize,
        #[arg(long, default_value_t = 100)]
        commits: i64,
        #[arg(long, default_value = "commit-hist")]
        topic: String,
        #[arg(long, default_value = "hist")]
        group_prefix: String,
        /// Sample groups per __consumer_offsets partition.
        #[arg(long, default_value_t = 2)]
        per_partition: usize,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        deadline_s: u64,
        /// The broker's stdout and stderr go here.
        #[arg(long)]
        log: String,
        /// The broker command line.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

/// Java's `String.hashCode` (UTF-16 code units).
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `__consumer_offsets` partition of a group: Utils.abs(hash) % 50.
fn offsets_partition(group: &str) -> i32 {
    let h = java_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % OFFSETS_PARTITIONS
}

/// One connection speaking raw Kafka frames; requests can be pipelined
/// (answers come back in request order).
struct Conn {
    stream: BufReader<TcpStream>,
    next_corr: i32,
    out: BytesMut,
}

impl Conn {
    async fn connect(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(Self {
            stream: BufReader::with_capacity(1 << 16, stream),
            next_corr: 1,
            out: BytesMut::new(),
        })
    }

    /// Encodes a request into the output buffer; `flush` sends it.
    fn queue(&mut self, key: ApiKey, version: i16, body: &impl Encodable) -> Result<i32> {
        let corr = self.next_corr;
        self.next_corr = self.next_corr.wrapping_add(1);
        let mut frame = BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(corr)
            .with_client_id(Some(StrBytes::from_static_str("commit-bench")))
            .encode(&mut frame, key.request_header_version(version))?;
        body.encode(&mut frame, version)?;
        self.out
            .extend_from_slice(&i32::try_from(frame.len())?.to_be_bytes());
        self.out.extend_from_slice(&frame);
        Ok(corr)
    }

    async fn flush(&mut self) -> Result<()> {
        if !self.out.is_empty() {
            let out = self.out.split();
            self.stream.get_mut().write_all(&out).await?;
        }
        Ok(())
    }

    async fn recv<T: Decodable>(&mut self, key: ApiKey, version: i16, corr: i32) -> Result<T> {
        let size = self.stream.read_i32().await.context("reading a response")?;
        let size = usize::try_from(size).map_err(|_| anyhow!("negative frame size"))?;
        let mut buf = vec![0u8; size];
        self.stream.read_exact(&mut buf).await?;
        let mut frame = Bytes::from(buf);
        let header = ResponseHeader::decode(&mut frame, key.response_header_version(version))?;
        if header.correlation_id != corr {
            bail!(
                "{key:?}: correlation id {} where {corr} was expected",
                header.correlation_id
            );
        }
        T::decode(&mut frame, version)
    }

    async fn call<T: Decodable>(
        &mut self,
        key: ApiKey,
        version: i16,
        body: &impl Encodable,
    ) -> Result<T> {
        let corr = self.queue(key, version, body)?;
        self.flush().await?;
        self.recv(key, version, corr).await
    }
}

fn commit_request(group: &str, topic: &str, partition: i32, offset: i64) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(text(group)))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(text(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(partition)
                .with_committed_offset(offset)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(StrBytes::from_static_str("")))])])
}

/// The single error code of a one-partition OffsetCommit answer.
fn commit_error(r: &OffsetCommitResponse) -> Result<i16> {
    r.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.error_code)
        .ok_or_else(|| anyhow!("OffsetCommit answer without a partition"))
}

async fn create_topic(bootstrap: &str, name: &str, partitions: i32) -> Result<()> {
    let mut conn = Conn::connect(bootstrap).await?;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(text(name)))
            .with_num_partitions(partitions)
            .with_replication_factor(1)])
        .with_timeout_ms(30_000);
    let r: CreateTopicsResponse = conn
        .call(ApiKey::CreateTopics, CREATE_TOPICS_V, &req)
        .await?;
    let code = r.topics.first().map(|t| t.error_code).unwrap_or(-1);
    if code != 0 && code != TOPIC_ALREADY_EXISTS {
        bail!("CreateTopics {name}: error code {code}");
    }
    Ok(())
}

/// FindCoordinator for `group` until it answers without error (the first
/// one creates `__consumer_offsets`); the coordinator's host:port.
async fn find_coordinator(conn: &mut Conn, group: &str, deadline: Instant) -> Result<String> {
    loop {
        let req = FindCoordinatorRequest::default()
            .with_key(text(group))
            .with_key_type(0);
        let r: FindCoordinatorResponse = conn
            .call(ApiKey::FindCoordinator, FIND_COORDINATOR_V, &req)
            .await?;
        if r.error_code == 0 {
            return Ok(format!("{}:{}", r.host.as_str(), r.port));
        }
        if !retriable(r.error_code) || Instant::now() > deadline {
            bail!("FindCoordinator {group}: error code {}", r.error_code);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn throughput(
    bootstrap: &str,
    clients: usize,
    seconds: u64,
    topic: &str,
    prefix: &str,
) -> Result<()> {
    create_topic(bootstrap, topic, i32::try_from(clients)?).await?;
    let setup_deadline = Instant::now() + Duration::from_secs(60);
    let mut conns = Vec::new();
    for i in 0..clients {
        let group = format!("{prefix}-{i}");
        let mut boot = Conn::connect(bootstrap).await?;
        let coordinator = find_coordinator(&mut boot, &group, setup_deadline).await?;
        let mut conn = Conn::connect(&coordinator).await?;
        // One commit answered without error before the clock starts (the
        // coordinator may still be loading a new partition).
        loop {
            let r: OffsetCommitResponse = conn
                .call(
                    ApiKey::OffsetCommit,
                    OFFSET_COMMIT_V,
                    &commit_request(&group, topic, i32::try_from(i)?, 0),
                )
                .await?;
            match commit_error(&r)? {
                0 => break,
                c if retriable(c) && Instant::now() < setup_deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                c => bail!("OffsetCommit {group}: error code {c}"),
            }
        }
        conns.push((group, conn));
    }
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for (i, (group, mut conn)) in conns.into_iter().enumerate() {
        let topic = topic.to_owned();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors) = (0u64, 0u64);
            let mut offset = 1i64;
            while Instant::now() < end {
                let req = commit_request(&group, &topic, i32::try_from(i)?, offset);
                let r: OffsetCommitResponse = conn
                    .call(ApiKey::OffsetCommit, OFFSET_COMMIT_V, &req)
                    .await?;
                if commit_error(&r)? == 0 {
                    ok += 1;
                    offset += 1;
                } else {
                    errors += 1;
                }
            }
            anyhow::Ok((ok, errors))
        }));
    }
    let (mut ok, mut errors) = (0u64, 0u64);
    for t in tasks {
        let (o, e) = t.await??;
        ok += o;
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"clients": clients, "seconds": round3(secs), "commits": ok, "errors": errors,
               "commits_per_s": (ok as f64 / secs).round()})
    );
    if errors > 0 {
        bail!("{errors} commits answered with an error");
    }
    Ok(())
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// One connection's share of the fill: groups `mine`, commit k of every
/// group before commit k+1 of any, at most `depth` requests in flight.
async fn fill_connection(
    addr: String,
    mine: Vec<String>,
    commits: i64,
    depth: usize,
    topic: String,
) -> Result<(u64, u64)> {
    let mut conn = Conn::connect(&addr).await?;
    // (group index, offset) to send, in order; retries go to the front.
    let mut todo: VecDeque<(usize, i64)> = VecDeque::new();
    for k in 1..=commits {
        for g in 0..mine.len() {
            todo.push_back((g, k));
        }
    }
    // A group's next commit waits while its previous one is in flight.
    let mut busy = vec![false; mine.len()];
    let mut inflight: VecDeque<(i32, usize, i64)> = VecDeque::new();
    let (mut ok, mut retries) = (0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while !todo.is_empty() || !inflight.is_empty() {
        while inflight.len() < depth {
            let Some(&(g, k)) = todo.front() else { break };
            if busy[g] {
                break;
            }
            todo.pop_front();
            busy[g] = true;
            let corr = conn.queue(
                ApiKey::OffsetCommit,
                OFFSET_COMMIT_V,
                &commit_request(&mine[g], &topic, 0, k),
            )?;
            inflight.push_back((corr, g, k));
        }
        conn.flush().await?;
        let (corr, g, k) = inflight.pop_front().expect("a request in flight");
        let r: OffsetCommitResponse = conn
            .recv(ApiKey::OffsetCommit, OFFSET_COMMIT_V, corr)
            .await?;
        busy[g] = false;
        match commit_error(&r)? {
            0 => ok += 1,
            c if retriable(c) && Instant::now() < deadline => {
                retries += 1;
                todo.push_front((g, k));
            }
            c => bail!("OffsetCommit {} offset {k}: error code {c}", mine[g]),
        }
    }
    Ok((ok, retries))
}

async fn fill(
    bootstrap: &str,
    groups: usize,
    commits: i64,
    connections: usize,
    depth: usize,
    topic: &str,
    prefix: &str,
) -> Result<()> {
    create_topic(bootstrap, topic, 1).await?;
    let names: Vec<String> = (0..groups).map(|g| format!("{prefix}-{g}")).collect();
    // FindCoordinator for one group of every __consumer_offsets partition;
    // a one-broker cluster has one coordinator for all.
    let mut boot = Conn::connect(bootstrap).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut coordinator = None;
    let mut covered = std::collections::BTreeSet::new();
    for name in &names {
        if covered.insert(offsets_partition(name)) {
            let c = find_coordinator(&mut boot, name, deadline).await?;
            if coordinator.get_or_insert_with(|| c.clone()) != &c {
                bail!("more than one coordinator ({c} and {coordinator:?}): this tool expects one broker");
            }
        }
    }
    let addr = coordinator.ok_or_else(|| anyhow!("no groups"))?;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let mine: Vec<String> = names.iter().skip(c).step_by(connections).cloned().collect();
        tasks.push(tokio::spawn(fill_connection(
            addr.clone(),
            mine,
            commits,
            depth,
            topic.to_owned(),
        )));
    }
    let (mut ok, mut retries) = (0u64, 0u64);
    for t in tasks {
        let (o, r) = t.await??;
        ok += o;
        retries += r;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({"groups": groups, "commits": ok, "retries": retries, "seconds": round3(secs),
               "commits_per_s": (ok as f64 / secs).round(), "offsets_partitions": covered.len()})
    );
    Ok(())
}

/// Kills the spawned broker if the tool ends without stopping it.
struct ChildGuard(Option<Child>);

impl ChildGuard {
    /// SIGTERM, then up to 60 s for the exit, then SIGKILL; the exit status.
    fn stop(&mut self) -> Result<String> {
        let Some(mut child) = self.0.take() else {
            return Ok("not running".into());
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status.to_string());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                child.wait()?;
                return Ok("killed after 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn ready(
    bootstrap: &str,
    groups: usize,
    commits: i64,
    topic: &str,
    prefix: &str,
    per_partition: usize,
    deadline_s: u64,
    log: &str,
    command: &[String],
) -> Result<()> {
    let mut by_partition: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for g in 0..groups {
        let name = format!("{prefix}-{g}");
        let v = by_partition.entry(offsets_partition(&name)).or_default();
        if v.len() < per_partition {
            v.push(name);
        }
    }
    let sample: Vec<String> = by_partition.values().flatten().cloned().collect();
    let log_file = std::fs::File::create(log).with_context(|| format!("creating {log}"))?;
    let t0 = Instant::now();
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .spawn()
        .with_context(|| format!("spawning {command:?}"))?;
    let mut guard = ChildGuard(Some(child));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let measured = tokio::select! {
        r = measure_ready(bootstrap, &sample, commits, topic, t0, deadline_s, &mut guard) => r,
        _ = term.recv() => Err(anyhow!("SIGTERM")),
        _ = int.recv() => Err(anyhow!("SIGINT")),
    };
    let stopped = guard.stop()?;
    let mut out = measured?;
    out["broker_exit"] = json!(stopped);
    out["sample_groups"] = json!(sample.len());
    out["offsets_partitions"] = json!(by_partition.len());
    println!("{out}");
    Ok(())
}

async fn measure_ready(
    bootstrap: &str,
    sample: &[String],
    commits: i64,
    topic: &str,
    t0: Instant,
    deadline_s: u64,
    guard: &mut ChildGuard,
) -> Result<serde_json::Value> {
    let deadline = t0 + Duration::from_secs(deadline_s);
    let mut pending: Vec<&String> = sample.iter().collect();
    let mut first_connect_ms = None;
    let mut first_answer_ms = None;
    let (mut rounds, mut wrong) = (0u64, 0u64);
    let mut codes: BTreeMap<i16, u64> = BTreeMap::new();
    let mut conn: Option<Conn> = None;
    loop {
        if Instant::now() > deadline {
            bail!(
                "{} of {} sample groups not ready after {deadline_s} s (error codes seen: {codes:?})",
                pending.len(),
                sample.len()
            );
        }
        if let Some(child) = guard.0.as_mut() {
            if let Some(status) = child.try_wait()? {
                bail!("the broker exited ({status}) before it was ready");
            }
        }
        let Some(c) = conn.as_mut() else {
            match Conn::connect(bootstrap).await {
                Ok(c) => {
                    first_connect_ms.get_or_insert(t0.elapsed().as_secs_f64() * 1e3);
                    conn = Some(c);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(2)).await,
            }
            continue;
        };
        rounds += 1;
        let round = async {
            let mut corrs = Vec::new();
            for g in &pending {
                let req = OffsetFetchRequest::default()
                    .with_group_id(GroupId(text(g)))
                    .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                        .with_name(TopicName(text(topic)))
                        .with_partition_indexes(vec![0])]));
                corrs.push(c.queue(ApiKey::OffsetFetch, OFFSET_FETCH_V, &req)?);
            }
            c.flush().await?;
            let mut answers = Vec::new();
            for corr in corrs {
                let r: OffsetFetchResponse =
                    c.recv(ApiKey::OffsetFetch, OFFSET_FETCH_V, corr).await?;
                answers.push(r);
            }
            anyhow::Ok(answers)
        };
        let answers = match tokio::time::timeout(Duration::from_secs(30), round).await {
            Ok(Ok(a)) => a,
            // A connection the broker closed or did not answer on: reconnect.
            Ok(Err(_)) | Err(_) => {
                conn = None;
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        first_answer_ms.get_or_insert(t0.elapsed().as_secs_f64() * 1e3);
        let mut still = Vec::new();
        for (g, r) in pending.iter().zip(answers) {
            let p = r.topics.first().and_then(|t| t.partitions.first());
            let code = if r.error_code != 0 {
                r.error_code
            } else {
                p.map(|p| p.error_code).unwrap_or(-1)
            };
            *codes.entry(code).or_default() += 1;
            match p {
                Some(p) if code == 0 && p.committed_offset == commits => {}
                Some(_) if code == 0 => {
                    wrong += 1;
                    still.push(*g);
                }
                _ => still.push(*g),
            }
        }
        pending = still;
        if pending.is_empty() {
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            return Ok(json!({
                "ready_ms": ms.round(),
                "first_connect_ms": first_connect_ms.map(f64::round),
                "first_answer_ms": first_answer_ms.map(f64::round),
                "rounds": rounds,
                "wrong_offset_answers": wrong,
                "answers_by_error_code": codes.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
            }));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    match args.cmd {
        Cmd::Throughput {
            clients,
            seconds,
            topic,
            group_prefix,
        } => throughput(&args.bootstrap, clients, seconds, &topic, &group_prefix).await,
        Cmd::Fill {
            groups,
            commits,
            connections,
            depth,
            topic,
            group_prefix,
        } => {
            fill(
                &args.bootstrap,
                groups,
                commits,
                connections,
                depth,
                &topic,
                &group_prefix,
            )
            .await
        }
        Cmd::Ready {
            groups,
            commits,
            topic,
            group_prefix,
            per_partition,
            deadline_s,
            log,
            command,
        } => {
            ready(
                &args.bootstrap,
                groups,
                commits,
                &topic,
                &group_prefix,
                per_partition,
                deadline_s,
                &log,
                &command,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_java() {
        // "hello".hashCode() == 99162322 in Java.
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(offsets_partition("hello"), 99_162_322 % 50);
    }
}
