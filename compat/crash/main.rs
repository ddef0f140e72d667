//! Crash tests: the real `strom` binary is SIGKILLed and restarted on the
//! same port and data dir; whatever it acknowledged before the kill must be
//! there afterwards, exactly once.
//!
//! Design (after sled's `test_crash_recovery.rs`): this binary plays two
//! roles. Run normally (`cargo test --test crash`) it is the *supervisor*,
//! which runs the cases below, each with its own temp data dir, its own
//! free loopback port (picked once, so a restarted broker comes back where
//! the clients expect it) and `DIR/broker.log` collecting the broker's
//! output across restarts (with a marker line per start and kill).
//! Re-executed with `STROM_CRASH_ROLE=producer` it is the *producer*
//! (`txn-producer`: the transactional producer).
//!
//! - `topic_survives_sigkill`: create a topic (2 partitions), SIGKILL the
//!   broker as soon as CreateTopics has answered, restart it: the topic is
//!   still listed, with its partitions.
//! - `acked_messages_survive_sigkill`: create the topic and make it durable
//!   with a clean SIGTERM restart (topic durability is the case above; this
//!   one is about the produce path). Start the producer process: an rdkafka
//!   `BaseProducer` with `enable.idempotence=true`, `acks=all`, a 60 s
//!   message timeout and unlimited retries, sending [`MESSAGES`] keyed,
//!   padded values `msg-<i>:...` at [`RATE_PER_SEC`], which appends one line
//!   `msg-<i> <partition> <offset>` per successful delivery report to
//!   `DIR/acked.txt` (one `write` per line, so the supervisor reads exactly
//!   what the producer was told). The supervisor SIGKILLs the broker each
//!   time the acknowledged count passes a mark of [`KILL_AFTER`] (a
//!   condition with a deadline, not a sleep) and restarts it, so the kills
//!   land with produce requests in flight (the producer reports how many
//!   it had to retry): the broker must recover its segments (cutting any
//!   torn tail), rebuild the index entries sled had not yet written and the
//!   idempotent producer state, and answer retried batches it already
//!   stored with their original offsets. `log.segment.bytes` is at
//!   its 1 MiB minimum so the run crosses segment rolls. After the producer
//!   exits the broker is SIGKILLed once more (nothing in flight), restarted,
//!   and both partitions are read from the beginning with an assigned
//!   rdkafka `BaseConsumer` up to the high watermarks.
//!
//!   **Invariant:** every acknowledged value is present exactly once, at
//!   its acknowledged (partition, offset); no value, acknowledged or not,
//!   appears twice (idempotence); every payload is intact; each partition's
//!   offsets are dense and its values in send order; and every message got
//!   a successful delivery report.
//!
//! - `committed_offsets_survive_sigkill`: 100 rounds of one synchronous
//!   OffsetCommit (rdkafka, rotating over 7 groups and both partitions),
//!   a SIGKILL of the broker the moment the commit returns (microseconds
//!   later), a restart and an OffsetFetch: every acknowledged commit is
//!   read back (they are `__consumer_offsets` records in the page cache
//!   before the acknowledgment).
//! - `stable_group_survives_sigkill`: two rdkafka members of a stable
//!   group; SIGKILL and restart; the group comes back from its stored
//!   metadata record, so each member commits in its old generation and
//!   neither is assigned again (no rebalance), as after a Kafka
//!   coordinator failover.
//! - `cleaning_survives_sigkill`: the producer process sends
//!   [`KEYED_MESSAGES`] values over [`KEYS`] keys to a compacted topic (1 MiB
//!   segments rolled every 500 ms, `min.cleanable.dirty.ratio=0.01`) while
//!   the broker's cleaner (`log.cleaner.backoff.ms=20`, its I/O capped so a
//!   clean takes about a second) compacts it. SIGKILLs: one mid-produce,
//!   [`CLEANING_KILLS`] the moment a `.cleaned` or `.swap` file shows in the
//!   partition dir (counted only if the file is still there after the kill,
//!   so the kill landed mid-clean; recovery must delete the unfinished
//!   output or finish the decided swap), one right after a `cleaned log`
//!   line (a checkpoint written), one after the producer is done. Then the
//!   partition is read from its start.
//!
//!   **Invariant** (what Kafka guarantees of a compacted log): every key's
//!   latest acknowledged value is present at its acknowledged offset; every
//!   record read is the one acknowledged at its offset; offsets increase;
//!   nothing is read twice; and below the last cleaner checkpoint the broker
//!   logged, no key appears twice (older values may remain only above it).
//! - `offsets_cleaning_survives_sigkill`: synchronous commits over 5
//!   groups (offset = round number, 1 kB of metadata) fill a one-partition
//!   `__consumer_offsets` with 1 MiB segments while the cleaner compacts
//!   it; between two commits, the moment a cleaner file shows the broker is
//!   SIGKILLed and restarted, until [`OFFSETS_CLEANING_KILLS`] kills landed
//!   mid-clean; more rounds until a clean finished, a last SIGKILL and
//!   restart. OffsetFetch:
//!   each group's committed offsets are at least its last acknowledged
//!   round and at most its last attempted one (a commit the broker stored
//!   but could not answer), with that round's metadata.
//! - `transactions_survive_sigkill`: the producer process, re-executed with
//!   `STROM_CRASH_ROLE=txn-producer`, runs [`TRANSACTIONS`] transactions
//!   with an rdkafka `ThreadedProducer` (`transactional.id`,
//!   `transaction.timeout.ms` 10 s): [`RECORDS_PER_TXN`] records
//!   `txn-<n>-<j>` over both partitions each, even ones committed, odd ones
//!   flushed (so their records are in the log) and aborted. Errors are
//!   handled as an application does: retriable → call again, abortable →
//!   `abort_transaction`, fatal → a new producer and `init_transactions`.
//!   Each outcome is appended to `DIR/acked.txt` once known: `committed`
//!   (`commit_transaction` returned Ok), `aborted` (`abort_transaction`
//!   returned Ok), `abandoned` (lost before commit was asked) or `unknown`
//!   (commit asked, then the producer was lost). The supervisor SIGKILLs
//!   and restarts the broker each time the outcome count passes a mark of
//!   [`TXN_KILL_AFTER`], once more after the producer closed, then asks
//!   with raw requests: ListTransactions + DescribeTransactions must show
//!   no transaction open, and ListOffsets read_committed (LSO) must equal
//!   read_uncommitted (high watermark) on both partitions (conditions with
//!   a deadline: a coordinator may still be completing a prepared
//!   transaction after the restart).
//!
//!   **Invariant:** a read_committed consumer reads every record of every
//!   committed transaction exactly once, nothing of an aborted or
//!   abandoned one, all or nothing of an unknown one, and nothing else;
//!   nothing is left hanging.
//! - `jepsen_checker_finds_planted_anomalies`, `jepsen_transactions` and
//!   `jepsen_transactions_cluster`: a checker in the spirit of Jepsen's
//!   Kafka workload over several transactional producers, a live reader
//!   and kills of the broker (or, on a three-node cluster from
//!   `compat/support/cluster.rs`, of partition leaders, transaction
//!   coordinators and any node, one at a time) and of producers
//!   mid-transaction; see `jepsen.rs`.
//!
//! Output ends with `crash: N passed, M failed` (after a libtest-style
//! `test result:` line for `scripts/test.sh`); free arguments filter the
//! cases by name (`cargo test --test crash -- topic`). A failed case keeps its
//! data dir and prints its path. Knobs: `STROM_CRASH_LOG_LEVEL=debug`
//! (per-request broker log lines), `STROM_CRASH_PRODUCER_DEBUG=eos,msg`
//! (librdkafka's debug log on the producer's stderr), `STROM_CRASH_KEEP=1`
//! (keep the data dirs of passing cases too). Every wait has a deadline,
//! and a guard SIGKILLs the broker and the producer on every exit path,
//! panics included.

mod jepsen;

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer,
};
use rdkafka::{ClientConfig, ClientContext, Message, Offset, TopicPartitionList};

const STROM: &str = env!("CARGO_BIN_EXE_strom");
/// Set to `producer` in the child process.
const ROLE_VAR: &str = "STROM_CRASH_ROLE";
const BOOTSTRAP_VAR: &str = "STROM_CRASH_BOOTSTRAP";
const ACKED_VAR: &str = "STROM_CRASH_ACKED";
/// The producer's [`ProducerSpec`], as `topic messages keys rate deadline-ms`.
const SPEC_VAR: &str = "STROM_CRASH_PRODUCER_SPEC";
const LOG_LEVEL_VAR: &str = "STROM_CRASH_LOG_LEVEL";
const PRODUCER_DEBUG_VAR: &str = "STROM_CRASH_PRODUCER_DEBUG";
const KEEP_VAR: &str = "STROM_CRASH_KEEP";

const TOPIC: &str = "crash";
const PARTITIONS: i32 = 2;
/// Messages the producer sends.
const MESSAGES: usize = 20_000;
/// Send pace (messages per second), so the kills land mid-stream with
/// produce requests in flight.
const RATE_PER_SEC: u64 = 5_000;
/// Padding per value, so the run crosses 1 MiB segment rolls.
const PAD: usize = 120;
/// SIGKILL the broker once this many messages are acknowledged.
const KILL_AFTER: [usize; 5] = [2_000, 6_000, 10_000, 14_000, 18_000];

/// How long the broker may take to start or stop.
const START_DEADLINE: Duration = Duration::from_secs(15);
/// How long one kill mark may take to be reached.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(20);
/// How long the producer may run in all (it gives up a little earlier).
const PRODUCER_DEADLINE: Duration = Duration::from_secs(40);

/// A case: a name and a run returning a one-line summary or the failure.
type Case = (&'static str, fn(&mut Run) -> Result<String, String>);

const CASES: [Case; 10] = [
    ("topic_survives_sigkill", topic_survives_sigkill),
    (
        "acked_messages_survive_sigkill",
        acked_messages_survive_sigkill,
    ),
    (
        "committed_offsets_survive_sigkill",
        committed_offsets_survive_sigkill,
    ),
    (
        "stable_group_survives_sigkill",
        stable_group_survives_sigkill,
    ),
    ("cleaning_survives_sigkill", cleaning_survives_sigkill),
    (
        "offsets_cleaning_survives_sigkill",
        offsets_cleaning_survives_sigkill,
    ),
    ("transactions_survive_sigkill", transactions_survive_sigkill),
    (
        "jepsen_checker_finds_planted_anomalies",
        jepsen::jepsen_checker_finds_planted_anomalies,
    ),
    ("jepsen_transactions", jepsen::jepsen_transactions),
    (
        "jepsen_transactions_cluster",
        jepsen::jepsen_transactions_cluster,
    ),
];

/// Rounds of commit, SIGKILL, restart, read back.
const COMMIT_ROUNDS: i64 = 100;

/// The compacted topic of `cleaning_survives_sigkill` (one partition).
const COMPACTED: &str = "compacted";
/// Keyed messages sent to it, over [`KEYS`] keys.
const KEYED_MESSAGES: usize = 120_000;
const KEYS: usize = 1_000;
/// Their pace: about 1.8 MB/s, a segment roll every ~0.6 s.
const KEYED_RATE_PER_SEC: u64 = 12_000;
/// How long that producer may run, kills and restarts included.
const KEYED_PRODUCER_DEADLINE: Duration = Duration::from_secs(90);
/// The cleaner's I/O cap (`log.cleaner.io.max.bytes.per.second`) in the
/// cleaning cases: it stretches a clean to about a second, so the cleaner
/// is always busy and a kill can land while it writes.
const CLEANER_IO_BYTES_PER_SEC: &str = "4000000";
/// SIGKILLs that must land while a clean is under way (its output file
/// is still in the partition dir after the kill).
const CLEANING_KILLS: usize = 4;
/// Kills that may miss (the clean finished between seeing its file and
/// the kill) before the case gives up.
const MAX_MISSED_KILLS: usize = 20;

/// Groups of `offsets_cleaning_survives_sigkill`, and its commit metadata
/// size (so ~500 commits fill a 1 MiB segment).
const OFFSET_GROUPS: i64 = 5;
const METADATA_BYTES: usize = 1_000;
/// Kills of that case that must land while `__consumer_offsets` is cleaned.
const OFFSETS_CLEANING_KILLS: usize = 3;
/// How long its commit rounds may take in all.
const OFFSETS_DEADLINE: Duration = Duration::from_secs(90);

/// Transactions the transactional producer runs (even ones committed, odd
/// ones aborted), records per transaction, and its transactional id.
const TRANSACTIONS: usize = 120;
const RECORDS_PER_TXN: usize = 10;
const TXN_ID: &str = "strom-crash-txn";
/// SIGKILL the broker once this many transactions have ended.
const TXN_KILL_AFTER: [usize; 5] = [10, 30, 50, 70, 90];
/// How long the transactional producer may run in all.
const TXN_PRODUCER_DEADLINE: Duration = Duration::from_secs(120);
/// The timeout of one transactional call (init, commit, abort).
const TXN_CALL_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    match std::env::var(ROLE_VAR).as_deref() {
        Ok("producer") => return producer_main(),
        Ok("txn-producer") => return txn_producer_main(),
        Ok("jepsen-producer") => return jepsen::jepsen_producer_main(),
        _ => {}
    }
    // Like libtest: free arguments filter the cases by name.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let started = Instant::now();
    let (mut passed, mut failed, mut filtered) = (0, 0, 0);
    for (name, case) in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            filtered += 1;
            continue;
        }
        let case_started = Instant::now();
        let outcome = std::panic::catch_unwind(|| run_case(name, case));
        let seconds = case_started.elapsed().as_secs_f64();
        match outcome {
            Ok(Ok(summary)) => {
                passed += 1;
                println!("test {name} ... ok ({seconds:.1} s): {summary}");
            }
            Ok(Err(failure)) => {
                failed += 1;
                println!("test {name} ... FAILED ({seconds:.1} s)\n{failure}");
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED ({seconds:.1} s): panicked");
            }
        }
    }
    println!(
        "test result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; \
         {filtered} filtered out; finished in {:.2}s",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    println!("crash: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Runs one case in a fresh data dir; kills its processes however it ends
/// and keeps the dir if it failed.
fn run_case(name: &str, case: fn(&mut Run) -> Result<String, String>) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("strom-crash-{name}-"))
        .tempdir()
        .map_err(|e| format!("temp dir: {e}"))?;
    let address = {
        let probe = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}"))?;
        probe.local_addr().map_err(|e| format!("bind: {e}"))?
    };
    let mut run = Run {
        children: Children::default(),
        dir: dir.path().to_owned(),
        address,
        log: dir.path().join("broker.log"),
        acked: dir.path().join("acked.txt"),
        starts: 0,
        settings: Vec::new(),
    };
    let result = case(&mut run);
    drop(run);
    match result {
        Ok(summary) if std::env::var_os(KEEP_VAR).is_none() => Ok(summary),
        Ok(summary) => Ok(format!("{summary}; kept {}", dir.keep().display())),
        Err(failure) => {
            let kept = dir.keep();
            Err(format!(
                "{failure}\ndata dir kept: {} (broker log: {})",
                kept.display(),
                kept.join("broker.log").display()
            ))
        }
    }
}

// ------------------------------------------------------------------ cases

/// A topic whose creation was acknowledged survives a SIGKILL right after.
fn topic_survives_sigkill(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_topic(run.address)?;
    run.crash_and_restart("topic created")?;
    let admin = admin(run.address)?;
    // All topics: naming the topic could auto-create it.
    let metadata = admin
        .inner()
        .fetch_metadata(None, CLIENT_DEADLINE)
        .map_err(|e| format!("metadata: {e}"))?;
    let listed: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| format!("{} ({} partitions)", t.name(), t.partitions().len()))
        .collect();
    match metadata.topics().iter().find(|t| t.name() == TOPIC) {
        Some(topic) if topic.partitions().len() == PARTITIONS as usize => {
            Ok(format!("listed after the restart: {listed:?}"))
        }
        _ => Err(format!(
            "topic '{TOPIC}' ({PARTITIONS} partitions) was created, then the broker was \
             SIGKILLed; after the restart the broker lists {listed:?}. Partition directories \
             on disk: {:?}",
            list_dir(&run.dir.join("data").join("logs"))
        )),
    }
}

/// The producer scenario; see the module comment.
fn acked_messages_survive_sigkill(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_topic(run.address)?;
    run.stop_broker()?;
    run.start_broker()?;

    let producer_deadline = run.spawn_producer(&ProducerSpec::crash_topic())?;

    let mut kills = Vec::new();
    for mark in KILL_AFTER {
        if !run.wait_for_acks(mark)? {
            break;
        }
        let at = run.acked_count();
        run.crash_and_restart(&format!("{at} acknowledged"))?;
        kills.push(at);
    }
    let (status, report) = run.wait_for_producer(producer_deadline)?;
    let acked = read_acked(&run.acked)?;
    // Nothing in flight now: what was acknowledged must survive a crash too.
    run.crash_and_restart("producer finished")?;

    let log = consume_all(run.address)?;
    let mut failures = check(&acked, &log);
    if kills.len() < KILL_AFTER.len() {
        failures.push(format!(
            "only {} of {} kills happened (at {kills:?} acknowledged): the producer ended early",
            kills.len(),
            KILL_AFTER.len()
        ));
    }
    if !status.success() || acked.len() != MESSAGES {
        failures.push(format!(
            "the producer exited with {status} after {} of {MESSAGES} acknowledgements",
            acked.len()
        ));
    }
    let per_partition: Vec<String> = (0..PARTITIONS)
        .map(|p| {
            let n = log.iter().filter(|r| r.partition == p).count();
            format!("p{p}={n}")
        })
        .collect();
    let unacked = log
        .iter()
        .filter(|r| r.id.is_some_and(|id| !acked.contains_key(&id)))
        .count();
    let summary = format!(
        "{} of {MESSAGES} acknowledged; SIGKILL at {kills:?} acks and once after; \
         producer: {}; read back {} records ({}), {unacked} of them unacknowledged; \
         {} broker starts",
        acked.len(),
        report.trim(),
        log.len(),
        per_partition.join(" "),
        run.starts,
    );
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", failures.join("\n")))
    }
}

/// 100 rounds of: commit an offset synchronously, SIGKILL the broker the
/// moment the commit is acknowledged, restart it, read the committed
/// offset back. Every acknowledged commit must be there.
fn committed_offsets_survive_sigkill(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_topic(run.address)?;
    run.stop_broker()?;
    run.start_broker()?;
    let mut lost = Vec::new();
    let mut micros = Vec::new();
    for round in 0..COMMIT_ROUNDS {
        let group = format!("crash-group-{}", round % 7);
        let partition = i32::try_from(round % i64::from(PARTITIONS)).unwrap_or(0);
        let committer = group_client(run.address, &group)?;
        let mut offsets = TopicPartitionList::new();
        offsets
            .add_partition_offset(TOPIC, partition, Offset::Offset(1000 + round))
            .map_err(|e| format!("offset list: {e}"))?;
        committer
            .commit(&offsets, rdkafka::consumer::CommitMode::Sync)
            .map_err(|e| format!("round {round}: commit: {e}"))?;
        let acked = Instant::now();
        if let Some(mut child) = run.children.broker.take() {
            let _ = child.kill();
            micros.push(acked.elapsed().as_micros());
            kill(child);
        }
        drop(committer);
        run.mark(&format!("SIGKILL (commit of round {round} acknowledged)"));
        run.start_broker()?;
        let reader = group_client(run.address, &group)?;
        let mut wanted = TopicPartitionList::new();
        wanted.add_partition(TOPIC, partition);
        let committed = reader
            .committed_offsets(wanted, CLIENT_DEADLINE)
            .map_err(|e| format!("round {round}: committed offsets: {e}"))?;
        let found = committed
            .find_partition(TOPIC, partition)
            .map(|p| p.offset());
        if found != Some(Offset::Offset(1000 + round)) {
            lost.push(format!("round {round} ({group}, p{partition}): {found:?}"));
        }
    }
    micros.sort_unstable();
    let summary = format!(
        "{COMMIT_ROUNDS} commits, each followed by a SIGKILL {}-{} µs after its \
         acknowledgment (median {} µs): {} lost",
        micros.first().copied().unwrap_or(0),
        micros.last().copied().unwrap_or(0),
        micros.get(micros.len() / 2).copied().unwrap_or(0),
        lost.len()
    );
    if lost.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", lost.join("\n")))
    }
}

/// Counts the assignments a group member receives.
#[derive(Default)]
struct RebalanceCounter {
    assigned: AtomicUsize,
}

impl ClientContext for RebalanceCounter {}

impl rdkafka::consumer::ConsumerContext for RebalanceCounter {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &rdkafka::consumer::Rebalance<'_>) {
        if matches!(rebalance, rdkafka::consumer::Rebalance::Assign(_)) {
            self.assigned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Two members of a stable group; the broker is SIGKILLed and restarted.
/// As after a Kafka coordinator failover, the group is restored from its
/// stored metadata: the members commit in their generation (which fails
/// with UNKNOWN_MEMBER_ID or ILLEGAL_GENERATION if the group was lost) and
/// keep heartbeating with no rebalance.
fn stable_group_survives_sigkill(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_topic(run.address)?;
    let members: Vec<BaseConsumer<RebalanceCounter>> = (0..2)
        .map(|i| {
            ClientConfig::new()
                .set("bootstrap.servers", run.address.to_string())
                .set("group.id", "crash-stable")
                .set("client.id", format!("member-{i}"))
                .set("enable.auto.commit", "false")
                .set("session.timeout.ms", "6000")
                .set("heartbeat.interval.ms", "100")
                .set("reconnect.backoff.max.ms", "100")
                .create_with_context(RebalanceCounter::default())
                .map_err(|e| format!("member {i}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    for member in &members {
        member
            .subscribe(&[TOPIC])
            .map_err(|e| format!("subscribe: {e}"))?;
    }
    // Errors polled are client events (the broker went away); the checks
    // below decide.
    let poll_all = || {
        for member in &members {
            let _ = member.poll(Duration::from_millis(20));
        }
        Ok::<(), String>(())
    };
    // Stable: both members hold one partition each.
    let deadline = Instant::now() + CLIENT_DEADLINE;
    loop {
        poll_all()?;
        let sizes: Vec<usize> = members
            .iter()
            .map(|m| m.assignment().map(|a| a.count()).unwrap_or(0))
            .collect();
        if sizes == [1, 1] {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "the group did not settle: assignment sizes {sizes:?}"
            ));
        }
    }
    let before: Vec<usize> = members
        .iter()
        .map(|m| m.context().assigned.load(Ordering::SeqCst))
        .collect();
    run.crash_and_restart("stable group")?;
    // Each member commits in its generation; librdkafka retries while the
    // coordinator loads or reconnects.
    for (i, member) in members.iter().enumerate() {
        let assignment = member
            .assignment()
            .map_err(|e| format!("assignment: {e}"))?;
        let mut offsets = TopicPartitionList::new();
        for element in assignment.elements() {
            offsets
                .add_partition_offset(TOPIC, element.partition(), Offset::Offset(7))
                .map_err(|e| format!("offset list: {e}"))?;
        }
        let deadline = Instant::now() + CLIENT_DEADLINE;
        loop {
            poll_all()?;
            match member.commit(&offsets, rdkafka::consumer::CommitMode::Sync) {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => {
                    return Err(format!(
                        "member {i} could not commit in its generation after the restart: {e}"
                    ))
                }
                Err(_) => {}
            }
        }
    }
    // Ten heartbeat intervals with the members polling: no rebalance.
    let watch = Instant::now() + Duration::from_secs(1);
    while Instant::now() < watch {
        poll_all()?;
    }
    let after: Vec<usize> = members
        .iter()
        .map(|m| m.context().assigned.load(Ordering::SeqCst))
        .collect();
    if before != after {
        return Err(format!(
            "the group rebalanced after the restart: assignments received {before:?} before, \
             {after:?} after"
        ));
    }
    Ok(format!(
        "2 members committed in their generation after SIGKILL and restart; \
         assignments received {after:?} (no rebalance)"
    ))
}

/// Keyed records into a compacted topic while the cleaner compacts it;
/// SIGKILLs mid-produce, mid-clean (at least [`CLEANING_KILLS`] with the
/// cleaner's output file still there afterwards), right after a finished
/// clean, and after the producer is done. What Kafka guarantees must hold
/// afterwards: every key's latest acknowledged value is at its acknowledged
/// offset, every record read is the one produced at its offset, offsets
/// increase, nothing appears twice; and below the last cleaner checkpoint
/// the broker logged, no key appears twice.
fn cleaning_survives_sigkill(run: &mut Run) -> Result<String, String> {
    run.settings = vec![
        ("log.cleaner.backoff.ms", "20"),
        (
            "log.cleaner.io.max.bytes.per.second",
            CLEANER_IO_BYTES_PER_SEC,
        ),
    ];
    run.start_broker()?;
    create_compacted_topic(run.address)?;
    run.stop_broker()?;
    run.start_broker()?;
    let spec = ProducerSpec {
        topic: COMPACTED.to_owned(),
        messages: KEYED_MESSAGES,
        keys: KEYS,
        rate: KEYED_RATE_PER_SEC,
        deadline: KEYED_PRODUCER_DEADLINE,
    };
    let producer_deadline = run.spawn_producer(&spec)?;
    let partition_dir = run
        .dir
        .join("data")
        .join("logs")
        .join(format!("{COMPACTED}-0"));
    let mut kills = Vec::new();

    // Mid-produce, the cleaner at whatever point it is.
    if run.wait_for_acks(KEYED_MESSAGES / 5)? {
        let at = run.acked_count();
        run.crash_and_restart(&format!("{at} acknowledged"))?;
        kills.push(format!("at {at} acks"));
    }
    // Mid-clean: the moment the cleaner's output file is seen.
    let (landed, missed) = run.kill_while_cleaning(&partition_dir, CLEANING_KILLS)?;
    kills.extend(landed.iter().map(|files| format!("mid-clean {files:?}")));
    // Right after a clean finished (its checkpoint written).
    let cleans = run.cleaned_lines(COMPACTED).len();
    run.wait_for(
        "a clean to finish",
        Instant::now() + PROGRESS_DEADLINE,
        |run| run.cleaned_lines(COMPACTED).len() > cleans,
    )?;
    run.crash_and_restart("a clean finished")?;
    kills.push("after a clean".to_owned());

    let (status, report) = run.wait_for_producer(producer_deadline)?;
    let acked = read_acked(&run.acked)?;
    run.crash_and_restart("producer finished")?;
    kills.push("after the producer".to_owned());
    // Read before the records are: cleaning meanwhile only removes more.
    let checkpoint = run.cleaned_lines(COMPACTED).last().copied().unwrap_or(0);
    let log = read_partition(run.address, COMPACTED, 0)?;

    let mut failures = check_compacted(&spec, &acked, &log, checkpoint);
    if !status.success() || acked.len() != KEYED_MESSAGES {
        failures.push(format!(
            "the producer exited with {status} after {} of {KEYED_MESSAGES} acknowledgements",
            acked.len()
        ));
    }
    if landed.len() < CLEANING_KILLS {
        failures.push(format!(
            "only {} of {CLEANING_KILLS} kills landed while the cleaner was writing \
             (the producer ended first)",
            landed.len()
        ));
    }
    if log.len() * 2 > acked.len() {
        failures.push(format!(
            "{} of {} records left: the cleaner did not compact",
            log.len(),
            acked.len()
        ));
    }
    let text = std::fs::read_to_string(&run.log).unwrap_or_default();
    let summary = format!(
        "{} of {KEYED_MESSAGES} acknowledged over {KEYS} keys; SIGKILLs: {}; {missed} kills \
         missed a clean; recovery deleted {} unfinished cleaner outputs and completed {} swaps; \
         read back {} records, last logged cleaner checkpoint {checkpoint}; producer: {}; \
         {} broker starts",
        acked.len(),
        kills.join(", "),
        text.matches("deleting unfinished cleaner output").count(),
        text.matches("completing an interrupted cleaner swap")
            .count(),
        log.len(),
        report.trim(),
        run.starts,
    );
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", failures.join("\n")))
    }
}

/// Creates [`COMPACTED`]: one partition, compact only, 1 MiB segments
/// rolled every 500 ms, cleaned at any dirty ratio.
fn create_compacted_topic(address: SocketAddr) -> Result<(), String> {
    let admin = admin(address)?;
    let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
    let topic = NewTopic::new(COMPACTED, 1, TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1048576")
        .set("segment.ms", "500")
        .set("min.cleanable.dirty.ratio", "0.01");
    let results = futures::executor::block_on(admin.create_topics([&topic], &options))
        .map_err(|e| format!("create topic: {e}"))?;
    for result in results {
        result.map_err(|(name, code)| format!("create topic {name}: {code}"))?;
    }
    Ok(())
}

/// Every way a compacted partition read back breaks Kafka's guarantees
/// for the acknowledged sends of `spec`; `checkpoint`: a cleaner
/// checkpoint the log reached.
fn check_compacted(
    spec: &ProducerSpec,
    acked: &HashMap<usize, (i32, i64)>,
    log: &[KeyedRecord],
    checkpoint: i64,
) -> Vec<String> {
    const SHOWN: usize = 10;
    let mut failures = Vec::new();
    let mut report = |what: &str, examples: Vec<String>| {
        if !examples.is_empty() {
            let shown: Vec<&str> = examples.iter().take(SHOWN).map(String::as_str).collect();
            failures.push(format!(
                "{what}: {} (e.g. {})",
                examples.len(),
                shown.join("; ")
            ));
        }
    };
    report(
        "offsets not increasing",
        log.windows(2)
            .filter(|w| w[1].offset <= w[0].offset)
            .map(|w| format!("{} after {}", w[1].offset, w[0].offset))
            .collect(),
    );
    let mut wrong = Vec::new();
    let mut seen: HashMap<usize, i64> = HashMap::new();
    let mut twice = Vec::new();
    let mut cleaned_keys: HashMap<&str, i64> = HashMap::new();
    let mut uncleaned = Vec::new();
    for record in log {
        let id = record
            .value
            .split(':')
            .next()
            .and_then(|id| id.strip_prefix("msg-"))
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < spec.messages && payload(*i) == record.value);
        let Some(id) = id else {
            wrong.push(format!(
                "{} holds {:?}",
                record.offset,
                record.value.chars().take(40).collect::<String>()
            ));
            continue;
        };
        if record.key != spec.key(id) || acked.get(&id) != Some(&(0, record.offset)) {
            wrong.push(format!(
                "{} holds msg-{id} under key {}, acknowledged at {:?}",
                record.offset,
                record.key,
                acked.get(&id)
            ));
        }
        if let Some(earlier) = seen.insert(id, record.offset) {
            twice.push(format!("msg-{id} at {earlier} and {}", record.offset));
        }
        if record.offset < checkpoint {
            if let Some(earlier) = cleaned_keys.insert(&record.key, record.offset) {
                uncleaned.push(format!("{} at {earlier} and {}", record.key, record.offset));
            }
        }
    }
    report(
        "records that are not the one produced at their offset",
        wrong,
    );
    report("records read twice", twice);
    report(
        &format!("keys twice below the cleaner checkpoint {checkpoint}"),
        uncleaned,
    );
    // Each key's latest acknowledged value (the highest offset).
    let mut latest: HashMap<String, (i64, usize)> = HashMap::new();
    for (id, (_, offset)) in acked {
        let entry = latest.entry(spec.key(*id)).or_insert((*offset, *id));
        if *offset > entry.0 {
            *entry = (*offset, *id);
        }
    }
    let mut lost: Vec<String> = latest
        .iter()
        .filter(|(_, (offset, id))| seen.get(id) != Some(offset))
        .map(|(key, (offset, id))| {
            format!(
                "{key}: msg-{id} acknowledged at {offset}, found at {:?}",
                seen.get(id)
            )
        })
        .collect();
    lost.sort();
    report("latest acknowledged values missing", lost);
    failures
}

/// One record of a compacted topic read back.
struct KeyedRecord {
    offset: i64,
    key: String,
    value: String,
}

/// Reads one partition from its log start to its high watermark.
fn read_partition(
    address: SocketAddr,
    topic: &str,
    partition: i32,
) -> Result<Vec<KeyedRecord>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address.to_string())
        .set("group.id", "strom-crash-reader")
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "10000")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let (_, high) = consumer
        .fetch_watermarks(topic, partition, CLIENT_DEADLINE)
        .map_err(|e| format!("watermarks of {topic}-{partition}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(topic, partition, Offset::Beginning)
        .map_err(|e| format!("assignment: {e}"))?;
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let mut next = 0;
    let mut records = Vec::new();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while next < high {
        if Instant::now() > deadline {
            return Err(format!(
                "reading {topic}-{partition} did not reach the high watermark {high} within \
                 {CLIENT_DEADLINE:?}: next offset {next}"
            ));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| format!("consume: {e}"))?;
        let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
        next = message.offset() + 1;
        records.push(KeyedRecord {
            offset: message.offset(),
            key: text(message.key()),
            value: text(message.payload()),
        });
    }
    Ok(records)
}

/// The commit metadata of round `round`: its number, padded.
fn commit_metadata(round: i64) -> String {
    let mut metadata = format!("round-{round}:");
    metadata.extend(std::iter::repeat_n('m', METADATA_BYTES));
    metadata
}

/// Synchronous commits (rotating over [`OFFSET_GROUPS`] groups, both
/// partitions, offset = round, padded metadata) fill `__consumer_offsets`
/// (one partition, 1 MiB segments) while the cleaner compacts it; the
/// broker is SIGKILLed whenever the cleaner's output file is seen between
/// two commits, until [`OFFSETS_CLEANING_KILLS`] kills landed mid-clean;
/// after a few more rounds a last SIGKILL and restart. Each group's
/// committed offsets are read back with OffsetFetch: at least its last
/// acknowledged round, at most its last attempted one, with that round's
/// metadata.
fn offsets_cleaning_survives_sigkill(run: &mut Run) -> Result<String, String> {
    run.settings = vec![
        ("offsets.topic.num.partitions", "1"),
        ("offsets.topic.segment.bytes", "1048576"),
        ("log.cleaner.backoff.ms", "20"),
        (
            "log.cleaner.io.max.bytes.per.second",
            CLEANER_IO_BYTES_PER_SEC,
        ),
    ];
    run.start_broker()?;
    create_topic(run.address)?;
    run.stop_broker()?;
    run.start_broker()?;
    let partition_dir = run
        .dir
        .join("data")
        .join("logs")
        .join("__consumer_offsets-0");
    let groups: Vec<String> = (0..OFFSET_GROUPS)
        .map(|g| format!("crash-cleaned-{g}"))
        .collect();
    let connect = |run: &Run| -> Result<Vec<BaseConsumer>, String> {
        groups
            .iter()
            .map(|g| group_client(run.address, g))
            .collect()
    };
    let mut clients = connect(run)?;
    let mut acked: HashMap<usize, i64> = HashMap::new();
    let mut attempted: HashMap<usize, i64> = HashMap::new();
    let (mut landed, mut missed, mut refused) = (Vec::new(), 0, 0);
    let mut after_last_kill = 0;
    let mut cleans_at_last_kill = 0;
    let deadline = Instant::now() + OFFSETS_DEADLINE;
    let mut round = 0i64;
    // Until enough kills landed mid-clean, then a clean finished after the
    // last of them (with every group committing meanwhile).
    while landed.len() < OFFSETS_CLEANING_KILLS
        || after_last_kill < 2 * OFFSET_GROUPS
        || run.cleaned_lines("__consumer_offsets").len() <= cleans_at_last_kill
    {
        if Instant::now() > deadline {
            return Err(format!(
                "{round} commit rounds in {OFFSETS_DEADLINE:?}: {} kills landed while \
                 __consumer_offsets was cleaned ({missed} missed), {} cleans finished",
                landed.len(),
                run.cleaned_lines("__consumer_offsets").len()
            ));
        }
        let group = usize::try_from(round % OFFSET_GROUPS).unwrap_or(0);
        let mut offsets = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            let mut element = offsets.add_partition(TOPIC, partition);
            element
                .set_offset(Offset::Offset(round))
                .map_err(|e| format!("offset list: {e}"))?;
            element.set_metadata(commit_metadata(round));
        }
        attempted.insert(group, round);
        match clients[group].commit(&offsets, rdkafka::consumer::CommitMode::Sync) {
            Ok(()) => {
                acked.insert(group, round);
            }
            Err(_) => refused += 1,
        }
        round += 1;
        after_last_kill += 1;
        if landed.len() < OFFSETS_CLEANING_KILLS && !cleaner_files(&partition_dir).is_empty() {
            if let Some(child) = run.children.broker.take() {
                kill(child);
            }
            let left = cleaner_files(&partition_dir);
            run.mark(&format!("SIGKILL (cleaning, files left: {left:?})"));
            if left.is_empty() {
                missed += 1;
                if missed > MAX_MISSED_KILLS {
                    return Err(format!("{missed} kills missed the clean they aimed at"));
                }
            } else {
                landed.push(left);
            }
            drop(std::mem::take(&mut clients));
            run.start_broker()?;
            clients = connect(run)?;
            after_last_kill = 0;
            cleans_at_last_kill = run.cleaned_lines("__consumer_offsets").len();
        }
    }
    drop(clients);
    run.crash_and_restart("commits done, a clean finished")?;

    let mut failures = Vec::new();
    for (group, name) in groups.iter().enumerate() {
        let (Some(low), Some(high)) = (acked.get(&group), attempted.get(&group)) else {
            failures.push(format!("{name}: no commit acknowledged"));
            continue;
        };
        let reader = group_client(run.address, name)?;
        let mut wanted = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            wanted.add_partition(TOPIC, partition);
        }
        let committed = reader
            .committed_offsets(wanted, CLIENT_DEADLINE)
            .map_err(|e| format!("{name}: committed offsets: {e}"))?;
        for partition in 0..PARTITIONS {
            let found = committed.find_partition(TOPIC, partition);
            let offset = found.as_ref().map(|p| p.offset());
            let metadata = found.as_ref().map(|p| p.metadata().to_owned());
            let good = match offset {
                Some(Offset::Offset(o)) => {
                    (*low..=*high).contains(&o) && metadata == Some(commit_metadata(o))
                }
                _ => false,
            };
            if !good {
                failures.push(format!(
                    "{name} p{partition}: committed {offset:?} (metadata {:?}), last \
                     acknowledged round {low}, last attempted {high}",
                    metadata.map(|m| m.chars().take(20).collect::<String>())
                ));
            }
        }
    }
    let cleans = run.cleaned_lines("__consumer_offsets").len();
    if cleans == 0 {
        failures.push("the cleaner never finished a clean of __consumer_offsets".to_owned());
    }
    let size: u64 = std::fs::read_dir(&partition_dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    let summary = format!(
        "{round} commit rounds over {OFFSET_GROUPS} groups ({} refused while the broker \
         restarted); SIGKILLs mid-clean with {landed:?} left, {missed} missed, one after a \
         finished clean and the last commit; {cleans} cleans logged; __consumer_offsets-0 \
         holds {size} bytes",
        refused
    );
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", failures.join("\n")))
    }
}

/// The cleaner's files in a partition dir: output being written
/// (`.cleaned`) or a decided swap (`.swap`).
fn cleaner_files(dir: &Path) -> Vec<String> {
    list_dir(dir)
        .into_iter()
        .filter(|name| name.ends_with(".log.cleaned") || name.ends_with(".log.swap"))
        .collect()
}

/// A client of `group` that commits and reads commits, never subscribing.
fn group_client(address: SocketAddr, group: &str) -> Result<BaseConsumer, String> {
    ClientConfig::new()
        .set("bootstrap.servers", address.to_string())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("reconnect.backoff.max.ms", "100")
        .create()
        .map_err(|e| format!("consumer: {e}"))
}

/// The transactional scenario; see the module comment.
fn transactions_survive_sigkill(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_topic(run.address)?;
    run.stop_broker()?;
    run.start_broker()?;

    let mut producer =
        Command::new(std::env::current_exe().map_err(|e| format!("current exe: {e}"))?);
    producer
        .env(ROLE_VAR, "txn-producer")
        .env(BOOTSTRAP_VAR, run.address.to_string())
        .env(ACKED_VAR, &run.acked)
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    run.children.producer = Some(
        producer
            .spawn()
            .map_err(|e| format!("cannot start the producer: {e}"))?,
    );
    let producer_deadline = Instant::now() + TXN_PRODUCER_DEADLINE;
    let mut kills = Vec::new();
    for mark in TXN_KILL_AFTER {
        if !run.wait_for_acks(mark)? {
            break;
        }
        let at = run.acked_count();
        run.crash_and_restart(&format!("{at} transactions ended"))?;
        kills.push(at);
    }
    let (status, report) = run.wait_for_producer(producer_deadline)?;
    let outcomes = read_outcomes(&run.acked)?;
    // The producer has closed: every transaction is ended, and that too
    // must survive a crash.
    run.crash_and_restart("producer finished")?;

    let mut failures = Vec::new();
    // Nothing hanging: no transaction left open at the coordinator, and on
    // each partition the last stable offset has caught up with the high
    // watermark. Both are reached at once when the producer closed cleanly;
    // the deadline covers a coordinator still completing markers it had
    // prepared before the last kill.
    let (open, offsets) = wait_until_settled(&[run.address], TOPIC, PARTITIONS)?;
    if !open.is_empty() {
        failures.push(format!(
            "transactions still open {CLIENT_DEADLINE:?} after the producer closed: {open:?}"
        ));
    }
    let unstable: Vec<String> = offsets
        .iter()
        .filter(|(_, (lso, hw))| lso != hw)
        .map(|(p, (lso, hw))| format!("partition {p}: LSO {lso} < high watermark {hw}"))
        .collect();
    if !unstable.is_empty() {
        failures.push(format!("hanging transactions: {}", unstable.join("; ")));
    }
    let ends: BTreeMap<i32, i64> = offsets.iter().map(|(p, (_, hw))| (*p, *hw)).collect();
    let records = consume_committed(&run.address.to_string(), TOPIC, &ends)?;
    failures.extend(check_transactions(&outcomes, &records));
    if kills.len() < TXN_KILL_AFTER.len() {
        failures.push(format!(
            "only {} of {} kills happened (at {kills:?} transactions ended): the producer \
             ended early",
            kills.len(),
            TXN_KILL_AFTER.len()
        ));
    }
    if !status.success() || outcomes.len() != TRANSACTIONS {
        failures.push(format!(
            "the producer exited with {status} after {} of {TRANSACTIONS} transactions",
            outcomes.len()
        ));
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in outcomes.values() {
        *kinds.entry(outcome.as_str()).or_default() += 1;
    }
    let summary = format!(
        "{} transactions ended ({kinds:?}); SIGKILL at {kills:?} ended and once after; \
         producer: {}; read_committed read {} records; LSO = high watermark {ends:?}; \
         {} broker starts",
        outcomes.len(),
        report.trim(),
        records.len(),
        run.starts,
    );
    if failures.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{summary}\n{}", failures.join("\n")))
    }
}

/// How a transaction ended, as the producer saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnOutcome {
    /// `commit_transaction` returned Ok: every record visible exactly once.
    Committed,
    /// `abort_transaction` returned Ok: no record visible.
    Aborted,
    /// Never asked to commit, and the producer was lost (fatal error) before
    /// its abort returned: no record visible either.
    Abandoned,
    /// Asked to commit, no answer, then the producer was lost: all of its
    /// records visible exactly once, or none.
    Unknown,
}

impl TxnOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Committed => "committed",
            Self::Aborted => "aborted",
            Self::Abandoned => "abandoned",
            Self::Unknown => "unknown",
        }
    }

    fn parse(word: &str) -> Option<Self> {
        [
            Self::Committed,
            Self::Aborted,
            Self::Abandoned,
            Self::Unknown,
        ]
        .into_iter()
        .find(|o| o.as_str() == word)
    }
}

/// The outcomes file: `<outcome> <transaction>` per line.
fn read_outcomes(path: &Path) -> Result<BTreeMap<usize, TxnOutcome>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut outcomes = BTreeMap::new();
    for line in text.lines() {
        let parsed = line
            .split_once(' ')
            .and_then(|(kind, n)| Some((TxnOutcome::parse(kind)?, n.parse::<usize>().ok()?)));
        let Some((outcome, n)) = parsed else {
            return Err(format!("bad line in {}: {line:?}", path.display()));
        };
        if let Some(earlier) = outcomes.insert(n, outcome) {
            return Err(format!(
                "transaction {n} ended twice: {earlier:?}, then {outcome:?}"
            ));
        }
    }
    Ok(outcomes)
}

/// The value of record `j` of transaction `n`.
fn txn_payload(n: usize, j: usize) -> String {
    format!("txn-{n}-{j}")
}

/// Every way the read_committed log disagrees with the outcomes.
fn check_transactions(outcomes: &BTreeMap<usize, TxnOutcome>, records: &[Record]) -> Vec<String> {
    let mut failures = Vec::new();
    let mut seen: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut strange = Vec::new();
    for record in records {
        let parsed = record
            .value
            .strip_prefix("txn-")
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(n, j)| Some((n.parse::<usize>().ok()?, j.parse::<usize>().ok()?)))
            .filter(|(n, j)| *j < RECORDS_PER_TXN && txn_payload(*n, *j) == record.value);
        match parsed {
            Some((n, j)) if record.partition == txn_partition(j) => {
                seen.entry(n).or_default().push(j);
            }
            _ => strange.push(format!(
                "({}, {}) holds {:?}",
                record.partition, record.offset, record.value
            )),
        }
    }
    if !strange.is_empty() {
        failures.push(format!(
            "records with an unexpected payload or partition: {} (e.g. {})",
            strange.len(),
            strange
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let all: Vec<usize> = (0..RECORDS_PER_TXN).collect();
    let mut wrong = Vec::new();
    for (n, outcome) in outcomes {
        let mut got = seen.remove(n).unwrap_or_default();
        got.sort_unstable();
        let ok = match outcome {
            TxnOutcome::Committed => got == all,
            TxnOutcome::Aborted | TxnOutcome::Abandoned => got.is_empty(),
            TxnOutcome::Unknown => got.is_empty() || got == all,
        };
        if !ok {
            wrong.push(format!("transaction {n} {outcome:?}: read records {got:?}"));
        }
    }
    for (n, got) in seen {
        wrong.push(format!(
            "transaction {n} has no recorded outcome, read records {got:?}"
        ));
    }
    if !wrong.is_empty() {
        failures.push(format!(
            "transactions read back wrong (committed: all {RECORDS_PER_TXN} records once; \
             aborted: none): {} (e.g. {})",
            wrong.len(),
            wrong
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    failures
}

/// Waits (up to [`CLIENT_DEADLINE`]) until no coordinator lists an open
/// transaction and each partition's last stable offset equals its high
/// watermark; returns what it saw last: the open transactions (id, state,
/// partitions) and per partition (LSO, high watermark). `nodes` are the
/// brokers: every one is asked ListTransactions, each listed id's
/// coordinator DescribeTransactions, each partition's leader ListOffsets.
#[allow(clippy::type_complexity)]
fn wait_until_settled(
    nodes: &[SocketAddr],
    topic: &str,
    partitions: i32,
) -> Result<(Vec<String>, BTreeMap<i32, (i64, i64)>), String> {
    let deadline = Instant::now() + CLIENT_DEADLINE;
    let first = *nodes.first().ok_or("no broker to ask")?;
    loop {
        // Fresh connections per round: a broker may still be loading.
        let attempt = (|| {
            let open = raw_client::open_transactions(nodes)?;
            let leaders = RawClient::connect(first)?.partition_leaders(topic)?;
            let mut offsets = BTreeMap::new();
            for partition in 0..partitions {
                let leader = leaders
                    .get(&partition)
                    .ok_or_else(|| format!("no leader of {topic}-{partition}"))?;
                let mut raw = RawClient::connect(*leader)?;
                let lso = raw.end_offset(topic, partition, 1)?;
                let hw = raw.end_offset(topic, partition, 0)?;
                offsets.insert(partition, (lso, hw));
            }
            Ok::<_, String>((open, offsets))
        })();
        match attempt {
            Ok((open, offsets))
                if open.is_empty() && offsets.values().all(|(lso, hw)| lso == hw) =>
            {
                return Ok((open, offsets));
            }
            Ok(seen) if Instant::now() > deadline => return Ok(seen),
            Err(e) if Instant::now() > deadline => {
                return Err(format!("asking for open transactions and offsets: {e}"))
            }
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Reads `topic`'s partitions (the keys of `ends`) with
/// `isolation.level=read_committed` from the beginning until each reports
/// its end (`ends`: the last stable offsets, which equal the high
/// watermarks).
fn consume_committed(
    bootstrap: &str,
    topic: &str,
    ends: &BTreeMap<i32, i64>,
) -> Result<Vec<Record>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "strom-crash-txn-reader")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("socket.timeout.ms", "10000")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    for partition in ends.keys() {
        assignment
            .add_partition_offset(topic, *partition, Offset::Beginning)
            .map_err(|e| format!("assignment: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let mut records = Vec::new();
    let mut at_end: BTreeMap<i32, bool> = ends.keys().map(|p| (*p, false)).collect();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while at_end.values().any(|done| !done) {
        if Instant::now() > deadline {
            return Err(format!(
                "read_committed reading did not reach the ends {ends:?} within \
                 {CLIENT_DEADLINE:?} (at end: {at_end:?}, {} records read)",
                records.len()
            ));
        }
        match consumer.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                // The fetch reached the partition's end (its last stable
                // offset, which the caller saw equal the high watermark;
                // nothing produces any more).
                at_end.insert(partition, true);
            }
            Some(Err(e)) => return Err(format!("consume: {e}")),
            Some(Ok(message)) => records.push(Record {
                partition: message.partition(),
                offset: message.offset(),
                id: None,
                value: String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned(),
            }),
        }
    }
    Ok(records)
}

// ---------------------------------------------------------------- producer

/// The value of message `i`: its id, a colon, and padding derived from `i`.
fn payload(i: usize) -> String {
    let fill = char::from(b'a' + u8::try_from(i % 26).unwrap_or(0));
    format!("msg-{i}:{}", fill.to_string().repeat(PAD))
}

/// The producer's client context: records delivery reports (successes to
/// the acked file) and counts produce requests a kill cut off.
struct AckWriter {
    file: Mutex<File>,
    /// Print librdkafka's log lines (`STROM_CRASH_PRODUCER_DEBUG` is set).
    verbose: bool,
    acked: AtomicUsize,
    failed: AtomicUsize,
    /// Produce requests that failed in a way that leaves their batch
    /// "possibly persisted" (sent, no answer): the retries that test
    /// idempotence.
    cut: AtomicUsize,
}

impl ClientContext for AckWriter {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "REQERR"
            && message.contains("ProduceRequest failed")
            && message.contains("MsgPossiblyPersisted")
        {
            self.cut.fetch_add(1, Ordering::SeqCst);
        }
        // Connection errors while the broker is down are expected.
        if self.verbose {
            eprintln!("producer: librdkafka {level:?} {facility} {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.verbose {
            eprintln!("producer: librdkafka error {error}: {reason}");
        }
    }
}

impl ProducerContext for AckWriter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(message) => {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                let id = value.split(':').next().unwrap_or_default();
                let line = format!("{id} {} {}\n", message.partition(), message.offset());
                let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = file.write_all(line.as_bytes()) {
                    eprintln!("producer: cannot record an ack: {e}");
                    std::process::exit(3);
                }
                self.acked.fetch_add(1, Ordering::SeqCst);
            }
            Err((error, message)) => {
                if self.failed.fetch_add(1, Ordering::SeqCst) < 5 {
                    let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                    let id = value.split(':').next().unwrap_or_default();
                    eprintln!("producer: delivery of {id} failed: {error}");
                }
            }
        }
    }
}

/// What the producer child sends: `messages` padded values `msg-<i>:...`
/// to `topic` at `rate` per second, keyed `<i>` or, with `keys` > 0,
/// `k<i % keys>`; it gives up 5 s before `deadline`.
#[derive(Debug, Clone)]
struct ProducerSpec {
    topic: String,
    messages: usize,
    keys: usize,
    rate: u64,
    deadline: Duration,
}

impl ProducerSpec {
    /// The spec of `acked_messages_survive_sigkill`.
    fn crash_topic() -> Self {
        Self {
            topic: TOPIC.to_owned(),
            messages: MESSAGES,
            keys: 0,
            rate: RATE_PER_SEC,
            deadline: PRODUCER_DEADLINE,
        }
    }

    /// The key of message `i`.
    fn key(&self, i: usize) -> String {
        if self.keys == 0 {
            i.to_string()
        } else {
            format!("k{}", i % self.keys)
        }
    }

    /// The form passed in [`SPEC_VAR`].
    fn render(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.topic,
            self.messages,
            self.keys,
            self.rate,
            self.deadline.as_millis()
        )
    }

    fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split(' ');
        let spec = Self {
            topic: fields.next()?.to_owned(),
            messages: fields.next()?.parse().ok()?,
            keys: fields.next()?.parse().ok()?,
            rate: fields.next()?.parse().ok()?,
            deadline: Duration::from_millis(fields.next()?.parse().ok()?),
        };
        fields.next().is_none().then_some(spec)
    }
}

/// The child process: sends what its [`ProducerSpec`] says, records each
/// acknowledgement, prints a one-line report on stdout. Exits 0 once every
/// message is acknowledged.
fn producer_main() -> ExitCode {
    let (Ok(bootstrap), Ok(acked_path), Some(spec)) = (
        std::env::var(BOOTSTRAP_VAR),
        std::env::var(ACKED_VAR),
        std::env::var(SPEC_VAR)
            .ok()
            .and_then(|s| ProducerSpec::parse(&s)),
    ) else {
        eprintln!("producer: {BOOTSTRAP_VAR}, {ACKED_VAR} and {SPEC_VAR} must be set");
        return ExitCode::from(2);
    };
    let file = match OpenOptions::new()
        .create(true)
        .append(true)
        .open(&acked_path)
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("producer: cannot open {acked_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let extra_debug = std::env::var(PRODUCER_DEBUG_VAR).ok();
    let context = AckWriter {
        file: Mutex::new(file),
        verbose: extra_debug.is_some(),
        acked: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        cut: AtomicUsize::new(0),
    };
    // `broker` debugging yields the REQERR lines that count cut-off requests.
    let debug = match extra_debug {
        Some(extra) => format!("broker,{extra}"),
        None => "broker".to_owned(),
    };
    let producer: BaseProducer<AckWriter> = match ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", "60000")
        .set("retries", "2147483647")
        .set("max.in.flight.requests.per.connection", "5")
        .set("linger.ms", "5")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "250")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "250")
        .set("socket.timeout.ms", "10000")
        .set("debug", debug)
        .set_log_level(RDKafkaLogLevel::Debug)
        .create_with_context(context)
    {
        Ok(producer) => producer,
        Err(e) => {
            eprintln!("producer: cannot create the producer: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let deadline = started + spec.deadline.saturating_sub(Duration::from_secs(5));
    let context = producer.context();
    let mut sent = 0;
    while context.acked.load(Ordering::SeqCst) + context.failed.load(Ordering::SeqCst)
        < spec.messages
        && Instant::now() < deadline
    {
        let due = usize::try_from(started.elapsed().as_millis() * u128::from(spec.rate) / 1000)
            .unwrap_or(usize::MAX)
            .min(spec.messages);
        while sent < due {
            let key = spec.key(sent);
            let value = payload(sent);
            match producer.send(BaseRecord::to(&spec.topic).key(&key).payload(&value)) {
                Ok(()) => sent += 1,
                Err((e, _)) => {
                    eprintln!("producer: cannot enqueue msg-{sent}: {e}");
                    break;
                }
            }
        }
        producer.poll(Duration::from_millis(5));
        if let Some((code, reason)) = producer.client().fatal_error() {
            eprintln!("producer: fatal error {code:?}: {reason}");
            break;
        }
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    if let Err(e) = producer.flush(remaining) {
        eprintln!("producer: flush: {e}");
    }
    let acked = context.acked.load(Ordering::SeqCst);
    println!(
        "sent {sent}, acknowledged {acked}, failed {}, {} produce requests cut off by a kill \
         and retried, {:.1} s",
        context.failed.load(Ordering::SeqCst),
        context.cut.load(Ordering::SeqCst),
        started.elapsed().as_secs_f64()
    );
    if acked == spec.messages {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------- transactional producer

/// The partition record `j` of a transaction goes to.
fn txn_partition(j: usize) -> i32 {
    i32::try_from(j % 2).unwrap_or(0)
}

/// The transactional producer's context: counts delivery failures.
struct TxnContext {
    verbose: bool,
    failed: AtomicUsize,
}

impl ClientContext for TxnContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        if self.verbose {
            eprintln!("txn-producer: librdkafka {level:?} {facility} {message}");
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if self.verbose {
            eprintln!("txn-producer: librdkafka error {error}: {reason}");
        }
    }
}

impl ProducerContext for TxnContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, message)) = result {
            if self.failed.fetch_add(1, Ordering::SeqCst) < 5 {
                let value = String::from_utf8_lossy(message.payload().unwrap_or_default());
                eprintln!("txn-producer: delivery of {value} failed: {error}");
            }
        }
    }
}

/// What the transactional producer counts for its report.
#[derive(Default)]
struct TxnStats {
    /// Producers created (1 + re-creations after fatal errors).
    producers: usize,
    /// Commits that failed with an abortable error and were aborted.
    commit_aborted: usize,
    /// Retriable errors retried (commit, abort, init).
    retried: usize,
}

/// A transactional producer, created and initialised (InitProducerId
/// retried until `deadline`, as the broker may be down or loading). A
/// `ThreadedProducer`: its thread serves the event queue, which
/// `abort_transaction` waits on (the delivery reports of the messages it
/// purges must be served; with a `BaseProducer` nobody polls meanwhile).
fn txn_producer(
    bootstrap: &str,
    transactional_id: &str,
    verbose: bool,
    deadline: Instant,
    stats: &mut TxnStats,
) -> Result<ThreadedProducer<TxnContext>, String> {
    let context = TxnContext {
        verbose,
        failed: AtomicUsize::new(0),
    };
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", transactional_id)
        .set("transaction.timeout.ms", "10000")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "2")
        .set("retry.backoff.ms", "50")
        .set("retry.backoff.max.ms", "250")
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "250")
        .set("socket.timeout.ms", "10000");
    if let Ok(debug) = std::env::var(PRODUCER_DEBUG_VAR) {
        config.set("debug", debug);
    }
    let producer: ThreadedProducer<TxnContext> = config
        .set_log_level(RDKafkaLogLevel::Debug)
        .create_with_context(context)
        .map_err(|e| format!("cannot create the producer: {e}"))?;
    stats.producers += 1;
    loop {
        match producer.init_transactions(TXN_CALL_TIMEOUT) {
            Ok(()) => return Ok(producer),
            Err(KafkaError::Transaction(e)) if e.is_retriable() && Instant::now() < deadline => {
                stats.retried += 1;
            }
            Err(e) => return Err(format!("init_transactions: {e}")),
        }
    }
}

/// Is the producer in a fatal state (it must be replaced)?
fn is_fatal(producer: &ThreadedProducer<TxnContext>, error: &KafkaError) -> bool {
    producer.client().fatal_error().is_some()
        || matches!(error, KafkaError::Transaction(e) if e.is_fatal())
}

/// One record of a transaction: partition, key, value.
type TxnRecord = (i32, Option<String>, String);

/// Runs one transaction (`label` names it in the log): begin, `records` to
/// `topic` in order, then commit (`commit`) or abort, handling errors as
/// an application does: retriable → call again, abortable → abort, fatal →
/// give up this producer (the caller replaces it). `commit_requested` is
/// called once, just before the first commit call.
#[allow(clippy::too_many_arguments)]
fn run_transaction(
    producer: &ThreadedProducer<TxnContext>,
    label: &str,
    topic: &str,
    records: &[TxnRecord],
    commit: bool,
    deadline: Instant,
    stats: &mut TxnStats,
    mut commit_requested_hook: impl FnMut(),
) -> TxnOutcome {
    let mut commit_requested = false;
    let lost = |requested: bool| {
        if requested {
            TxnOutcome::Unknown
        } else {
            TxnOutcome::Abandoned
        }
    };
    let produced = (|| {
        producer.begin_transaction()?;
        for (partition, key, value) in records {
            loop {
                let mut record = BaseRecord::<str, str>::to(topic)
                    .partition(*partition)
                    .payload(value.as_str());
                if let Some(key) = key {
                    record = record.key(key.as_str());
                }
                match producer.send(record) {
                    Ok(()) => break,
                    Err((
                        KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                        _,
                    )) => {
                        // Wait for room (deliveries are served by the
                        // producer's polling thread).
                        let _ = producer.flush(Duration::from_millis(100));
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        }
        Ok::<(), KafkaError>(())
    })();
    let mut abort = !commit;
    if abort && produced.is_ok() {
        // Let the records reach the log first, so the abort has data to
        // mark aborted (a failed flush leaves them to the abort's purge).
        if let Err(e) = producer.flush(TXN_CALL_TIMEOUT) {
            eprintln!("txn-producer: transaction {label}: flush before the abort: {e}");
        }
    }
    if let Err(e) = produced {
        if is_fatal(producer, &e) {
            eprintln!("txn-producer: transaction {label}: fatal: {e}");
            return lost(false);
        }
        eprintln!("txn-producer: transaction {label}: {e}; aborting");
        abort = true;
    }
    if !abort {
        commit_requested = true;
        commit_requested_hook();
        loop {
            match producer.commit_transaction(TXN_CALL_TIMEOUT) {
                Ok(()) => return TxnOutcome::Committed,
                Err(e) if is_fatal(producer, &e) => {
                    eprintln!("txn-producer: transaction {label}: commit: fatal: {e}");
                    return lost(true);
                }
                Err(KafkaError::Transaction(e)) if e.txn_requires_abort() => {
                    eprintln!("txn-producer: transaction {label}: commit: {e}; aborting");
                    stats.commit_aborted += 1;
                    break;
                }
                // Retriable, or the flush before the commit timed out.
                Err(e) if Instant::now() < deadline => {
                    eprintln!("txn-producer: transaction {label}: commit: {e}; retrying");
                    stats.retried += 1;
                }
                Err(e) => {
                    eprintln!("txn-producer: transaction {label}: commit: {e}; out of time");
                    return lost(true);
                }
            }
        }
    }
    loop {
        match producer.abort_transaction(TXN_CALL_TIMEOUT) {
            Ok(()) => return TxnOutcome::Aborted,
            Err(KafkaError::Transaction(e))
                if e.is_retriable() && !e.is_fatal() && Instant::now() < deadline =>
            {
                stats.retried += 1;
            }
            Err(e) => {
                eprintln!("txn-producer: transaction {label}: abort: {e}");
                return lost(commit_requested);
            }
        }
    }
}

/// The child process of `transactions_survive_sigkill`: runs
/// [`TRANSACTIONS`] transactions, committing the even ones and aborting
/// the odd ones, and appends each one's outcome (`committed <n>`,
/// `aborted <n>`, `abandoned <n>`, `unknown <n>`) to the outcomes file
/// once it is known. A fatal error replaces the producer (a new instance,
/// `init_transactions` again, which fences the old epoch). Exits 0 when
/// every transaction has an outcome.
fn txn_producer_main() -> ExitCode {
    let (Ok(bootstrap), Ok(outcomes_path)) =
        (std::env::var(BOOTSTRAP_VAR), std::env::var(ACKED_VAR))
    else {
        eprintln!("txn-producer: {BOOTSTRAP_VAR} and {ACKED_VAR} must be set");
        return ExitCode::from(2);
    };
    let mut file = match OpenOptions::new()
        .create(true)
        .append(true)
        .open(&outcomes_path)
    {
        Ok(file) => file,
        Err(e) => {
            eprintln!("txn-producer: cannot open {outcomes_path}: {e}");
            return ExitCode::from(2);
        }
    };
    let verbose = std::env::var(PRODUCER_DEBUG_VAR).is_ok();
    let started = Instant::now();
    let deadline = started + TXN_PRODUCER_DEADLINE - Duration::from_secs(5);
    let mut stats = TxnStats::default();
    let mut producer = match txn_producer(&bootstrap, TXN_ID, verbose, deadline, &mut stats) {
        Ok(producer) => producer,
        Err(e) => {
            eprintln!("txn-producer: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut ended = 0;
    for n in 0..TRANSACTIONS {
        if Instant::now() > deadline {
            break;
        }
        let records: Vec<TxnRecord> = (0..RECORDS_PER_TXN)
            .map(|j| (txn_partition(j), None, txn_payload(n, j)))
            .collect();
        let label = n.to_string();
        let outcome = run_transaction(
            &producer,
            &label,
            TOPIC,
            &records,
            n % 2 == 0,
            deadline,
            &mut stats,
            || {},
        );
        if let Err(e) = file.write_all(format!("{} {n}\n", outcome.as_str()).as_bytes()) {
            eprintln!("txn-producer: cannot record an outcome: {e}");
            return ExitCode::from(3);
        }
        ended += 1;
        if matches!(outcome, TxnOutcome::Abandoned | TxnOutcome::Unknown) {
            // As an application does after a fatal error: a new producer.
            drop(producer);
            producer = match txn_producer(&bootstrap, TXN_ID, verbose, deadline, &mut stats) {
                Ok(producer) => producer,
                Err(e) => {
                    eprintln!("txn-producer: after a fatal error: {e}");
                    return ExitCode::FAILURE;
                }
            };
        }
    }
    drop(producer);
    println!(
        "{ended} transactions, {} producer instance(s), {} commits aborted after an abortable \
         error, {} retriable errors retried, {:.1} s",
        stats.producers,
        stats.commit_aborted,
        stats.retried,
        started.elapsed().as_secs_f64()
    );
    if ended == TRANSACTIONS {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// -------------------------------------------------------------- supervisor

/// The child processes; all are SIGKILLed when this is dropped.
#[derive(Default)]
struct Children {
    broker: Option<Child>,
    producer: Option<Child>,
    /// Producers of a case that runs several.
    others: Vec<Option<Child>>,
}

impl Drop for Children {
    fn drop(&mut self) {
        for child in [self.broker.take(), self.producer.take()]
            .into_iter()
            .chain(self.others.iter_mut().map(Option::take))
            .flatten()
        {
            kill(child);
        }
    }
}

/// SIGKILLs a child and reaps it.
fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// One case's processes and files.
struct Run {
    children: Children,
    dir: PathBuf,
    address: SocketAddr,
    log: PathBuf,
    acked: PathBuf,
    starts: usize,
    /// Extra `--set key=value` arguments of every broker start.
    settings: Vec<(&'static str, &'static str)>,
}

impl Run {
    /// Appends a marker line to the broker log, to find the restarts.
    fn mark(&self, text: &str) {
        if let Ok(mut log) = OpenOptions::new().create(true).append(true).open(&self.log) {
            let _ = writeln!(log, "===== crash test: {text} =====");
        }
    }

    /// Starts the broker and waits until it has logged that it started and
    /// accepts a connection.
    fn start_broker(&mut self) -> Result<(), String> {
        self.starts += 1;
        self.mark(&format!("broker start #{}", self.starts));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot open {}: {e}", self.log.display()))?;
        let stderr = log.try_clone().map_err(|e| e.to_string())?;
        let level = std::env::var(LOG_LEVEL_VAR).unwrap_or_else(|_| "info".into());
        let child = Command::new(STROM)
            .arg("--listen")
            .arg(self.address.to_string())
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--num-partitions", "2", "--log-level", &level])
            .args(["--set", "log.segment.bytes=1048576"])
            .args(
                self.settings
                    .iter()
                    .flat_map(|(key, value)| ["--set".to_owned(), format!("{key}={value}")]),
            )
            .env_clear()
            .env("RUST_BACKTRACE", "1")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("cannot start {STROM}: {e}"))?;
        self.children.broker = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(child) = self.children.broker.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.children.broker = None;
                    return Err(format!(
                        "broker start #{} exited with {status}; see {}",
                        self.starts,
                        self.log.display()
                    ));
                }
            }
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text.matches("strom started").count() >= self.starts
                && TcpStream::connect_timeout(&self.address, Duration::from_secs(1)).is_ok()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "broker start #{} not up within {START_DEADLINE:?}; see {}",
                    self.starts,
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the broker cleanly (SIGTERM) and waits for it to exit 0.
    fn stop_broker(&mut self) -> Result<(), String> {
        let Some(mut child) = self.children.broker.take() else {
            return Ok(());
        };
        self.mark("SIGTERM");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .map_err(|e| format!("kill -TERM: {e}"))?;
        if !status.success() {
            kill(child);
            return Err("kill -TERM failed".into());
        }
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("the broker exited with {status}")),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                _ => {
                    kill(child);
                    return Err(format!("the broker did not stop within {START_DEADLINE:?}"));
                }
            }
        }
    }

    /// SIGKILLs the broker and starts it again on the same port and dir.
    fn crash_and_restart(&mut self, why: &str) -> Result<(), String> {
        if let Some(child) = self.children.broker.take() {
            kill(child);
        }
        self.mark(&format!("SIGKILL ({why})"));
        self.start_broker()
    }

    /// Polls `done` (every millisecond) until it holds or `deadline` passes.
    fn wait_for(
        &mut self,
        what: &str,
        deadline: Instant,
        mut done: impl FnMut(&mut Self) -> bool,
    ) -> Result<(), String> {
        while !done(self) {
            if Instant::now() > deadline {
                return Err(format!("timed out waiting for {what}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// The checkpoints of the `cleaned log` lines the broker logged for
    /// `topic`, in order.
    fn cleaned_lines(&self, topic: &str) -> Vec<i64> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let topic_field = format!("topic={topic} ");
        text.lines()
            .filter(|line| line.contains("cleaned log") && line.contains(&topic_field))
            .filter_map(|line| {
                let (_, rest) = line.split_once("checkpoint=")?;
                rest.split_whitespace().next()?.parse().ok()
            })
            .collect()
    }

    /// SIGKILLs the broker the moment a cleaner file shows in `dir`, and
    /// restarts it, until `kills` kills left the file behind (they landed
    /// mid-clean) or the producer ends. Returns the files each landed kill
    /// left and how many kills missed.
    fn kill_while_cleaning(
        &mut self,
        dir: &Path,
        kills: usize,
    ) -> Result<(Vec<Vec<String>>, usize), String> {
        let (mut landed, mut missed) = (Vec::new(), 0);
        while landed.len() < kills {
            let deadline = Instant::now() + PROGRESS_DEADLINE;
            loop {
                if !cleaner_files(dir).is_empty() {
                    break;
                }
                if let Some(producer) = self.children.producer.as_mut() {
                    if let Ok(Some(_)) = producer.try_wait() {
                        return Ok((landed, missed));
                    }
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "no cleaner output in {} within {PROGRESS_DEADLINE:?}",
                        dir.display()
                    ));
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(child) = self.children.broker.take() {
                kill(child);
            }
            let left = cleaner_files(dir);
            self.mark(&format!("SIGKILL (cleaning, files left: {left:?})"));
            if left.is_empty() {
                missed += 1;
                if missed > MAX_MISSED_KILLS {
                    return Err(format!("{missed} kills missed the clean they aimed at"));
                }
            } else {
                landed.push(left);
            }
            self.start_broker()?;
        }
        Ok((landed, missed))
    }

    /// Acknowledgements recorded so far (complete lines).
    fn acked_count(&self) -> usize {
        std::fs::read(&self.acked)
            .map(|bytes| bytes.iter().filter(|b| **b == b'\n').count())
            .unwrap_or(0)
    }

    /// Waits until `target` messages are acknowledged; `false` if the
    /// producer ended first.
    fn wait_for_acks(&mut self, target: usize) -> Result<bool, String> {
        let deadline = Instant::now() + PROGRESS_DEADLINE;
        loop {
            if self.acked_count() >= target {
                return Ok(true);
            }
            if let Some(producer) = self.children.producer.as_mut() {
                if let Ok(Some(_)) = producer.try_wait() {
                    return Ok(false);
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {target} acknowledged within {PROGRESS_DEADLINE:?}",
                    self.acked_count()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Starts the producer process; returns its deadline.
    fn spawn_producer(&mut self, spec: &ProducerSpec) -> Result<Instant, String> {
        let mut producer =
            Command::new(std::env::current_exe().map_err(|e| format!("current exe: {e}"))?);
        producer
            .env(ROLE_VAR, "producer")
            .env(BOOTSTRAP_VAR, self.address.to_string())
            .env(ACKED_VAR, &self.acked)
            .env(SPEC_VAR, spec.render())
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        self.children.producer = Some(
            producer
                .spawn()
                .map_err(|e| format!("cannot start the producer: {e}"))?,
        );
        Ok(Instant::now() + spec.deadline)
    }

    /// Waits for the producer to exit: its status and its report line.
    fn wait_for_producer(&mut self, deadline: Instant) -> Result<(ExitStatus, String), String> {
        let Some(producer) = self.children.producer.as_mut() else {
            return Err("no producer running".into());
        };
        loop {
            match producer.try_wait() {
                Ok(Some(status)) => {
                    let mut report = String::new();
                    if let Some(mut stdout) = producer.stdout.take() {
                        let _ = stdout.read_to_string(&mut report);
                    }
                    self.children.producer = None;
                    return Ok((status, report));
                }
                Ok(None) if Instant::now() > deadline => {
                    return Err(format!(
                        "the producer did not finish by its deadline ({} acknowledged)",
                        self.acked_count()
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => return Err(format!("waiting for the producer: {e}")),
            }
        }
    }
}

fn admin(address: SocketAddr) -> Result<AdminClient<DefaultClientContext>, String> {
    ClientConfig::new()
        .set("bootstrap.servers", address.to_string())
        .create()
        .map_err(|e| format!("admin client: {e}"))
}

/// Creates [`TOPIC`] with [`PARTITIONS`] partitions.
fn create_topic(address: SocketAddr) -> Result<(), String> {
    create_named_topic(address, TOPIC, PARTITIONS)
}

/// Creates `name` with `partitions` partitions.
fn create_named_topic(address: SocketAddr, name: &str, partitions: i32) -> Result<(), String> {
    let admin = admin(address)?;
    let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    let results = futures::executor::block_on(admin.create_topics([&topic], &options))
        .map_err(|e| format!("create topic: {e}"))?;
    for result in results {
        result.map_err(|(name, code)| format!("create topic {name}: {code}"))?;
    }
    Ok(())
}

/// Entry names in `dir`, sorted.
fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// `msg-<i>` → its acknowledged (partition, offset).
fn read_acked(path: &Path) -> Result<HashMap<usize, (i32, i64)>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("read {}: {e}", path.display()))?;
    let mut acked = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(' ');
        let mut parse = || {
            let id = fields.next()?.strip_prefix("msg-")?.parse().ok()?;
            let partition = fields.next()?.parse().ok()?;
            let offset = fields.next()?.parse().ok()?;
            Some((id, partition, offset))
        };
        let Some((id, partition, offset)) = parse() else {
            return Err(format!("bad line in {}: {line:?}", path.display()));
        };
        if let Some(earlier) = acked.insert(id, (partition, offset)) {
            return Err(format!(
                "msg-{id} acknowledged twice: at {earlier:?} and at ({partition}, {offset})"
            ));
        }
    }
    Ok(acked)
}

/// One record read back.
struct Record {
    partition: i32,
    offset: i64,
    /// The message number, if the payload is exactly what was sent.
    id: Option<usize>,
    /// The payload (for reporting a bad one).
    value: String,
}

/// Reads both partitions from the beginning up to their high watermarks.
fn consume_all(address: SocketAddr) -> Result<Vec<Record>, String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", address.to_string())
        // librdkafka wants a group id even for `assign`; nothing is committed.
        .set("group.id", "strom-crash-reader")
        .set("enable.auto.commit", "false")
        .set("socket.timeout.ms", "10000")
        .create()
        .map_err(|e| format!("consumer: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for partition in 0..PARTITIONS {
        let (low, high) = consumer
            .fetch_watermarks(TOPIC, partition, CLIENT_DEADLINE)
            .map_err(|e| format!("watermarks of partition {partition}: {e}"))?;
        if low != 0 {
            return Err(format!("partition {partition} starts at {low}, expected 0"));
        }
        ends.insert(partition, high);
        assignment
            .add_partition_offset(TOPIC, partition, Offset::Beginning)
            .map_err(|e| format!("assignment: {e}"))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assign: {e}"))?;
    let mut next: BTreeMap<i32, i64> = (0..PARTITIONS).map(|p| (p, 0)).collect();
    let mut records = Vec::new();
    let deadline = Instant::now() + CLIENT_DEADLINE;
    while next.iter().any(|(p, n)| *n < ends[p]) {
        if Instant::now() > deadline {
            return Err(format!(
                "reading back did not reach the high watermarks {ends:?} within \
                 {CLIENT_DEADLINE:?}: next offsets {next:?}"
            ));
        }
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.map_err(|e| format!("consume: {e}"))?;
        let value = String::from_utf8_lossy(message.payload().unwrap_or_default()).into_owned();
        let id = value
            .split(':')
            .next()
            .and_then(|id| id.strip_prefix("msg-"))
            .and_then(|i| i.parse::<usize>().ok())
            .filter(|i| *i < MESSAGES && payload(*i) == value);
        next.insert(message.partition(), message.offset() + 1);
        records.push(Record {
            partition: message.partition(),
            offset: message.offset(),
            id,
            value,
        });
    }
    Ok(records)
}

/// Every way the log read back disagrees with the acknowledgements.
fn check(acked: &HashMap<usize, (i32, i64)>, log: &[Record]) -> Vec<String> {
    const SHOWN: usize = 10;
    let mut failures = Vec::new();
    let mut report = |what: &str, examples: Vec<String>| {
        if !examples.is_empty() {
            let shown: Vec<&str> = examples.iter().take(SHOWN).map(String::as_str).collect();
            failures.push(format!(
                "{what}: {} (e.g. {})",
                examples.len(),
                shown.join("; ")
            ));
        }
    };

    let mut found: HashMap<usize, Vec<(i32, i64)>> = HashMap::new();
    let mut corrupt = Vec::new();
    for record in log {
        match record.id {
            Some(id) => found
                .entry(id)
                .or_default()
                .push((record.partition, record.offset)),
            None => corrupt.push(format!(
                "({}, {}) holds {:?}",
                record.partition,
                record.offset,
                record.value.chars().take(40).collect::<String>()
            )),
        }
    }
    report("records with an unexpected payload", corrupt);

    let mut duplicates: Vec<(usize, &Vec<(i32, i64)>)> = found
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(id, places)| (*id, places))
        .collect();
    duplicates.sort();
    report(
        "values stored more than once (idempotence broken)",
        duplicates
            .iter()
            .map(|(id, places)| {
                let acked = acked
                    .get(id)
                    .map_or("unacknowledged".to_owned(), |a| format!("acked at {a:?}"));
                format!("msg-{id} at {places:?}, {acked}")
            })
            .collect(),
    );

    let mut ids: Vec<&usize> = acked.keys().collect();
    ids.sort();
    let mut lost = Vec::new();
    let mut moved = Vec::new();
    for id in ids {
        let at = acked[id];
        match found.get(id).map(Vec::as_slice) {
            None => lost.push(format!("msg-{id} acked at {at:?}")),
            Some(places) if !places.contains(&at) => {
                moved.push(format!("msg-{id} acked at {at:?}, found at {places:?}"));
            }
            Some(_) => {}
        }
    }
    report("acknowledged values missing (lost)", lost);
    report("acknowledged values at another offset", moved);

    for partition in 0..PARTITIONS {
        let mut records: Vec<&Record> = log.iter().filter(|r| r.partition == partition).collect();
        records.sort_by_key(|r| r.offset);
        let gaps: Vec<String> = records
            .iter()
            .enumerate()
            .filter(|(i, r)| i64::try_from(*i).ok() != Some(r.offset))
            .map(|(i, r)| format!("record #{i} has offset {}", r.offset))
            .collect();
        report(&format!("partition {partition}: offsets not dense"), gaps);
        let ids: Vec<(i64, usize)> = records
            .iter()
            .filter_map(|r| r.id.map(|id| (r.offset, id)))
            .collect();
        let reordered: Vec<String> = ids
            .windows(2)
            .filter(|w| w[1].1 <= w[0].1)
            .map(|w| {
                format!(
                    "msg-{} at {} before msg-{} at {}",
                    w[0].1, w[0].0, w[1].1, w[1].0
                )
            })
            .collect();
        report(
            &format!("partition {partition}: values out of send order"),
            reordered,
        );
    }
    failures
}

// ------------------------------------------------------------ raw protocol

#[path = "../support/raw_client.rs"]
mod raw_client;
use raw_client::{RawClient, CLIENT_DEADLINE};

#[path = "../support/cluster.rs"]
#[allow(dead_code)]
mod cluster;
