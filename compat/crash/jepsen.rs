//! `jepsen_transactions` and `jepsen_transactions_cluster`: a checker in
//! the spirit of Jepsen's Kafka workload, over transactions, while the
//! broker (one node) or one node at a time (three nodes) is SIGKILLed and
//! producers are killed mid-transaction. One workload and one checker
//! ([`workload`], [`check`]); what differs is [`Brokers`] (the bootstrap
//! list, where to ask, the fault) and the [`Plan`].
//!
//! **Workload.** [`PRODUCERS`] producer processes (re-executed with
//! `STROM_CRASH_ROLE=jepsen-producer`, each with its own transactional id
//! and an rdkafka `ThreadedProducer`, bootstrapped on every broker) each
//! run [`Plan::txns`] transactions over [`KEYS`] keys of a [`PARTITIONS`]-partition topic
//! (key `k<k>` lives in partition `k % PARTITIONS`). Transaction `n` of
//! producer `p` is drawn from a seeded generator ([`txn_plan`]): one to
//! three keys, one to three writes to each, interleaved, values
//! `<p>-<n>-<k>-<i>` (`i` counts the writes to key `k` in that
//! transaction, so every value is unique); a quarter of the transactions
//! are aborted after their records are flushed. Each producer appends its
//! history to its own file, one `write` per line, *before* the step it
//! names: `begin <n>`, `commit <n>` (about to ask for the commit), then
//! the outcome once known (`committed`, `aborted`, `abandoned`,
//! `unknown`, as in `transactions_survive_sigkill`). A restarted producer
//! continues after the last transaction it began.
//!
//! **Faults.** Each time the ended transactions pass a mark of
//! [`Plan::faults_after`] the supervisor injects a broker fault: on one
//! node ([`ONE_NODE`]) it SIGKILLs and restarts the broker; on a cluster
//! ([`CLUSTER`]: three nodes, replication factor 3 for the topic and
//! `__transaction_state`, `min.insync.replicas=2`, [`CLUSTER_SETTINGS`]
//! so a silent node is fenced after 1.5 s) it SIGKILLs one node, in turn
//! the leader of a data partition, the node coordinating a producer's
//! transactional id (FindCoordinator), and any node; waits until the
//! others took over every partition it led, restarts it, and waits until
//! every replica of every partition is in sync again. It also kills a
//! producer process the moment its history ends in `begin <n>` (a
//! transaction open, records in flight) at the marks of
//! [`Plan::producer_kills_after`], then starts it again: its new
//! instance's InitProducerId must fence the old epoch and abort what it
//! left open. A last broker fault comes after the producers finished.
//!
//! **Readers.** A live read_committed consumer (assigned every partition
//! from the beginning, `auto.offset.reset=error` so a reset shows) polls
//! through all of it, broker restarts and failovers included, and records
//! every (partition, offset, value) it is given. At the end, once no
//! coordinator lists an open transaction (ListTransactions of every node,
//! DescribeTransactions of each id's coordinator) and every partition's
//! last stable offset equals its high watermark (ListOffsets of its
//! leader), a fresh read_committed consumer reads every partition from
//! the start: the final log.
//!
//! **Checked** (Jepsen's names where it has one):
//! - *aborted read*: no value of an aborted transaction, of one abandoned
//!   before its commit was asked (a killed or fenced producer), or of one
//!   never begun, is read, live or at the end;
//! - *lost write*: every value of every committed transaction is in the
//!   final log; an `unknown` transaction (commit asked, no answer) is
//!   there whole or not at all (atomicity);
//! - *duplicate*: no value at two offsets, live or at the end;
//! - *inconsistent offsets*: each offset the live reader saw holds the
//!   same value in the final log;
//! - *nonmonotonic poll* and *poll skip*: per partition, the live reader's
//!   offsets strictly increase, and no final record lies between two
//!   consecutive ones (nor before its first, nor after its last once it
//!   caught up);
//! - *per-key order*: within each partition, each producer's writes to
//!   each key appear in the order it sent them (transaction, then write);
//! - nothing hanging: no open transaction, LSO = high watermark;
//! - on a cluster, every replica of every written partition of the topic
//!   and of `__transaction_state` is byte-identical at the end, and each
//!   node's ListTransactions lists only ids it coordinates (as Kafka's).
//!
//! Not checked: Elle's cycle search over write/read dependencies
//! (G0/G1c); with one read_committed reader and producers that only
//! write, the anomalies above are what such cycles would show.

use super::*;

use std::collections::BTreeSet;
use std::io::Write as _;

use kafka_protocol::messages::metadata_response::MetadataResponsePartition;

use super::cluster::{self, Cluster};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

const JEPSEN_TOPIC: &str = "jepsen";
const PARTITIONS: i32 = 4;
const KEYS: u64 = 8;
const PRODUCERS: usize = 3;

/// How much a run does and when its faults land.
struct Plan {
    /// Transactions per producer.
    txns: usize,
    /// Inject a broker fault once this many transactions (of all
    /// producers) ended.
    faults_after: &'static [usize],
    /// Kill a producer mid-transaction once this many ended (producers
    /// taken in turn, skipping one that has finished).
    producer_kills_after: &'static [usize],
}

/// `jepsen_transactions`: one broker, SIGKILLed seven times.
const ONE_NODE: Plan = Plan {
    txns: 150,
    faults_after: &[30, 90, 150, 210, 270, 330, 390],
    producer_kills_after: &[50, 150, 250, 350],
};

/// `jepsen_transactions_cluster`: three nodes, one SIGKILLed at a time
/// (each fault waits out a failover, a restart and the catch-up).
const CLUSTER: Plan = Plan {
    txns: 100,
    faults_after: &[15, 45, 75, 105, 135, 165],
    producer_kills_after: &[30, 90, 150, 210],
};

/// The settings of every node of the cluster case: a node silent for
/// 1.5 s is fenced and its leaderships move, a follower 2 s behind leaves
/// the ISR, acks=all (and so every transactional write and marker) needs
/// two in-sync replicas.
const CLUSTER_SETTINGS: [&str; 4] = [
    "broker.session.timeout.ms=1500",
    "broker.heartbeat.interval.ms=200",
    "replica.lag.time.max.ms=2000",
    "min.insync.replicas=2",
];
/// How long a failover, or a restarted node's catch-up, may take.
const FAILOVER_DEADLINE: Duration = Duration::from_secs(20);
/// How long the producers may take in all, kills included.
const WORKLOAD_DEADLINE: Duration = Duration::from_secs(150);
/// The producer's number, in the child process.
const PRODUCER_VAR: &str = "STROM_CRASH_JEPSEN_PRODUCER";
/// How many transactions it runs in all ([`Plan::txns`]).
const TXNS_VAR: &str = "STROM_CRASH_JEPSEN_TXNS";

/// SplitMix64: a small seeded generator, so the supervisor can replay
/// what each producer wrote.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One write: producer, transaction, key, and its number among the
/// transaction's writes to that key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Write {
    producer: usize,
    txn: usize,
    key: u64,
    index: usize,
}

impl Write {
    fn value(self) -> String {
        format!("{}-{}-{}-{}", self.producer, self.txn, self.key, self.index)
    }

    fn parse(value: &str) -> Option<Self> {
        let mut fields = value.split('-').map(str::parse::<u64>);
        let mut next = || fields.next()?.ok();
        let write = Self {
            producer: usize::try_from(next()?).ok()?,
            txn: usize::try_from(next()?).ok()?,
            key: next()?,
            index: usize::try_from(next()?).ok()?,
        };
        (write.value() == value).then_some(write)
    }

    fn partition(self) -> i32 {
        i32::try_from(self.key % PARTITIONS as u64).unwrap_or(0)
    }
}

/// What transaction `txn` of `producer` writes, in send order, and
/// whether it commits.
fn txn_plan(producer: usize, txn: usize) -> (Vec<Write>, bool) {
    let mut state = ((producer as u64) << 32) ^ txn as u64;
    let mut keys: Vec<(u64, usize)> = Vec::new();
    let wanted = 1 + splitmix(&mut state) % 3;
    while (keys.len() as u64) < wanted {
        let key = splitmix(&mut state) % KEYS;
        if keys.iter().all(|(k, _)| *k != key) {
            let writes = 1 + usize::try_from(splitmix(&mut state) % 3).unwrap_or(0);
            keys.push((key, writes));
        }
    }
    let mut writes = Vec::new();
    for index in 0..3 {
        for (key, count) in &keys {
            if index < *count {
                writes.push(Write {
                    producer,
                    txn,
                    key: *key,
                    index,
                });
            }
        }
    }
    let commit = !splitmix(&mut state).is_multiple_of(4);
    (writes, commit)
}

// ---------------------------------------------------------------- producer

/// One producer's history file: transactions begun, commits asked,
/// outcomes known.
#[derive(Default, Debug)]
struct History {
    begun: BTreeSet<usize>,
    commit_asked: BTreeSet<usize>,
    outcomes: BTreeMap<usize, TxnOutcome>,
    /// The last line is `begin <n>`: transaction `n` is open.
    open: Option<usize>,
}

impl History {
    fn read(path: &Path) -> Result<Self, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(format!("read {}: {e}", path.display())),
        };
        let mut history = Self::default();
        // A line without its newline is still being written.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in complete.lines() {
            let parsed = line
                .split_once(' ')
                .and_then(|(word, n)| Some((word, n.parse::<usize>().ok()?)));
            let Some((word, n)) = parsed else {
                return Err(format!("bad line in {}: {line:?}", path.display()));
            };
            history.open = None;
            match word {
                "begin" => {
                    history.begun.insert(n);
                    history.open = Some(n);
                }
                "commit" => {
                    history.commit_asked.insert(n);
                }
                _ => {
                    let outcome = TxnOutcome::parse(word)
                        .ok_or_else(|| format!("bad line in {}: {line:?}", path.display()))?;
                    if history.outcomes.insert(n, outcome).is_some() {
                        return Err(format!("{}: transaction {n} ended twice", path.display()));
                    }
                }
            }
        }
        Ok(history)
    }

    /// How each begun transaction ended: its outcome, or, when its
    /// producer was killed before one was known, `unknown` if the commit
    /// had been asked and `abandoned` otherwise.
    fn statuses(&self) -> BTreeMap<usize, TxnOutcome> {
        self.begun
            .iter()
            .map(|n| {
                let status = self.outcomes.get(n).copied().unwrap_or({
                    if self.commit_asked.contains(n) {
                        TxnOutcome::Unknown
                    } else {
                        TxnOutcome::Abandoned
                    }
                });
                (*n, status)
            })
            .collect()
    }
}

/// The child process: producer `STROM_CRASH_JEPSEN_PRODUCER` runs its
/// transactions from the one after the last it began (per its history
/// file, `STROM_CRASH_ACKED`) up to `STROM_CRASH_JEPSEN_TXNS`.
pub(super) fn jepsen_producer_main() -> ExitCode {
    let number = |var: &str| std::env::var(var).ok()?.parse::<usize>().ok();
    let (Ok(bootstrap), Ok(path), Some(me), Some(txns)) = (
        std::env::var(BOOTSTRAP_VAR),
        std::env::var(ACKED_VAR),
        number(PRODUCER_VAR),
        number(TXNS_VAR),
    ) else {
        eprintln!(
            "jepsen-producer: {BOOTSTRAP_VAR}, {ACKED_VAR}, {PRODUCER_VAR} and {TXNS_VAR} must \
             be set"
        );
        return ExitCode::from(2);
    };
    let history = match History::read(Path::new(&path)) {
        Ok(history) => history,
        Err(e) => {
            eprintln!("jepsen-producer: {e}");
            return ExitCode::from(2);
        }
    };
    let first = history.begun.last().map_or(0, |n| n + 1);
    let mut file = match OpenOptions::new().create(true).append(true).open(&path) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("jepsen-producer: cannot open {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut note = |line: String| file.write_all(line.as_bytes());
    let verbose = std::env::var(PRODUCER_DEBUG_VAR).is_ok();
    let started = Instant::now();
    let deadline = started + WORKLOAD_DEADLINE - Duration::from_secs(5);
    let mut stats = TxnStats::default();
    let id = transactional_id(me);
    let mut producer = match txn_producer(&bootstrap, &id, verbose, deadline, &mut stats) {
        Ok(producer) => producer,
        Err(e) => {
            eprintln!("jepsen-producer {me}: {e}");
            return ExitCode::FAILURE;
        }
    };
    for n in first..txns {
        if Instant::now() > deadline {
            eprintln!("jepsen-producer {me}: out of time at transaction {n}");
            return ExitCode::FAILURE;
        }
        let (writes, commit) = txn_plan(me, n);
        let records: Vec<TxnRecord> = writes
            .iter()
            .map(|w| (w.partition(), Some(format!("k{}", w.key)), w.value()))
            .collect();
        if let Err(e) = note(format!("begin {n}\n")) {
            eprintln!("jepsen-producer {me}: cannot write its history: {e}");
            return ExitCode::from(3);
        }
        let mut noted = Ok(());
        let label = format!("{me}/{n}");
        let outcome = run_transaction(
            &producer,
            &label,
            JEPSEN_TOPIC,
            &records,
            commit,
            deadline,
            &mut stats,
            || noted = note(format!("commit {n}\n")),
        );
        if let Err(e) = noted.and_then(|()| note(format!("{} {n}\n", outcome.as_str()))) {
            eprintln!("jepsen-producer {me}: cannot write its history: {e}");
            return ExitCode::from(3);
        }
        if matches!(outcome, TxnOutcome::Abandoned | TxnOutcome::Unknown) {
            drop(producer);
            producer = match txn_producer(&bootstrap, &id, verbose, deadline, &mut stats) {
                Ok(producer) => producer,
                Err(e) => {
                    eprintln!("jepsen-producer {me}: after a fatal error: {e}");
                    return ExitCode::FAILURE;
                }
            };
        }
    }
    drop(producer);
    println!(
        "producer {me}: transactions {first}..{txns}, {} instance(s), {} commits \
         aborted, {} retries, {:.1} s",
        stats.producers,
        stats.commit_aborted,
        stats.retried,
        started.elapsed().as_secs_f64()
    );
    ExitCode::SUCCESS
}

// ------------------------------------------------------------- live reader

/// One record a reader was given.
#[derive(Debug, Clone)]
struct Seen {
    partition: i32,
    offset: i64,
    value: String,
}

/// The live read_committed consumer, on its own thread.
struct LiveReader {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    errors: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveReader {
    fn start(bootstrap: &str) -> Result<Self, String> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "strom-jepsen-live")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "error")
            .set("fetch.wait.max.ms", "100")
            .set("reconnect.backoff.ms", "50")
            .set("reconnect.backoff.max.ms", "250")
            .create()
            .map_err(|e| format!("live consumer: {e}"))?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..PARTITIONS {
            assignment
                .add_partition_offset(JEPSEN_TOPIC, partition, Offset::Beginning)
                .map_err(|e| format!("assignment: {e}"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| format!("assign: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, seen, errors) = (stop.clone(), seen.clone(), errors.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match consumer.poll(Duration::from_millis(50)) {
                        None => {}
                        Some(Ok(message)) => {
                            let record = Seen {
                                partition: message.partition(),
                                offset: message.offset(),
                                value: String::from_utf8_lossy(
                                    message.payload().unwrap_or_default(),
                                )
                                .into_owned(),
                            };
                            if let Ok(mut seen) = seen.lock() {
                                seen.push(record);
                            }
                        }
                        Some(Err(e)) => {
                            if let Ok(mut errors) = errors.lock() {
                                errors.push(e.to_string());
                            }
                        }
                    }
                }
            })
        };
        Ok(Self {
            stop,
            seen,
            errors,
            thread: Some(thread),
        })
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Stops the thread; returns what it was given and the errors it got.
    fn finish(mut self) -> (Vec<Seen>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let errors = self.errors.lock().map(|e| e.clone()).unwrap_or_default();
        (self.seen(), errors)
    }
}

impl Drop for LiveReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

// -------------------------------------------------------------- supervisor

/// The classpath of the Java client and `JepsenProducer` (compat/java
/// builds them); when set, the last producer is the Java client.
const JAVA_VAR: &str = "STROM_CRASH_JAVA";

/// The least time a Java transaction takes (the producer waits out the
/// rest): it is ten times as fast as librdkafka's here, and would be done
/// before the first broker kill.
const JAVA_PACE: Duration = Duration::from_millis(60);

/// Producer `p`'s transactional id.
fn transactional_id(p: usize) -> String {
    format!("strom-jepsen-{p}")
}

/// How the producers run: rdkafka (this binary again), or for the last
/// one the Java client when [`JAVA_VAR`] is set.
struct Producers {
    histories: Vec<PathBuf>,
    java: Option<(String, PathBuf)>,
    /// Transactions per producer.
    txns: usize,
    /// The brokers' `host:port` list.
    bootstrap: String,
}

impl Producers {
    fn new(run: &Run, txns: usize, bootstrap: String) -> Result<Self, String> {
        let histories = (0..PRODUCERS)
            .map(|p| run.dir.join(format!("history-{p}.txt")))
            .collect();
        let java = match std::env::var(JAVA_VAR) {
            Ok(classpath) => {
                // The plan of the Java producer: `<n> <commit|abort>
                // <partition>:<key>:<value> ...` per transaction.
                let plan = run.dir.join("plan-java.txt");
                let mut text = String::new();
                for n in 0..txns {
                    let (writes, commit) = txn_plan(PRODUCERS - 1, n);
                    text.push_str(&format!("{n} {}", if commit { "commit" } else { "abort" }));
                    for w in writes {
                        text.push_str(&format!(" {}:k{}:{}", w.partition(), w.key, w.value()));
                    }
                    text.push('\n');
                }
                std::fs::write(&plan, text).map_err(|e| format!("write the plan: {e}"))?;
                Some((classpath, plan))
            }
            Err(_) => None,
        };
        Ok(Self {
            histories,
            java,
            txns,
            bootstrap,
        })
    }

    fn is_java(&self, p: usize) -> bool {
        self.java.is_some() && p == PRODUCERS - 1
    }

    /// Starts producer `p`'s process (again, after a kill).
    fn spawn(&self, p: usize) -> Result<Child, String> {
        let mut command = match &self.java {
            Some((classpath, plan)) if self.is_java(p) => {
                let mut java = Command::new("java");
                java.arg("-cp").arg(classpath).arg("JepsenProducer");
                java.arg(&self.bootstrap)
                    .arg(transactional_id(p))
                    .arg(plan)
                    .arg(&self.histories[p])
                    .arg(
                        (WORKLOAD_DEADLINE - Duration::from_secs(5))
                            .as_millis()
                            .to_string(),
                    )
                    .arg(JAVA_PACE.as_millis().to_string());
                java
            }
            _ => {
                let mut rdkafka =
                    Command::new(std::env::current_exe().map_err(|e| format!("current exe: {e}"))?);
                rdkafka
                    .env(ROLE_VAR, "jepsen-producer")
                    .env(PRODUCER_VAR, p.to_string())
                    .env(BOOTSTRAP_VAR, &self.bootstrap)
                    .env(TXNS_VAR, self.txns.to_string())
                    .env(ACKED_VAR, &self.histories[p]);
                rdkafka
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start producer {p}: {e}"))
    }
}

/// The brokers under test and the fault the supervisor injects.
enum Brokers {
    /// `Run`'s one broker: a fault SIGKILLs and restarts it.
    One,
    /// A cluster: fault `n` SIGKILLs one node, in turn the leader of a
    /// partition of the topic, the coordinator of a producer's
    /// transactional id, and any node; waits until the others took over
    /// what it led, restarts it, and waits until every replica of every
    /// partition is in sync again (so the next fault finds all three).
    Cluster(Cluster),
}

impl Brokers {
    /// Every broker's client address.
    fn nodes(&self, run: &Run) -> Vec<SocketAddr> {
        match self {
            Self::One => vec![run.address],
            Self::Cluster(cluster) => cluster.nodes.iter().map(|n| n.client).collect(),
        }
    }

    /// The `bootstrap.servers` of the clients: every broker.
    fn bootstrap(&self, run: &Run) -> String {
        self.nodes(run)
            .iter()
            .map(SocketAddr::to_string)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Appends a marker line to every broker's log.
    fn mark(&self, run: &Run, text: &str) {
        match self {
            Self::One => run.mark(text),
            Self::Cluster(cluster) => mark_nodes(cluster, text),
        }
    }

    /// Injects fault number `n` (see [`Brokers`]); what it did.
    fn fault(&mut self, run: &mut Run, n: usize, why: &str) -> Result<String, String> {
        let Self::Cluster(cluster) = self else {
            run.crash_and_restart(why)?;
            return Ok("broker".into());
        };
        let ids: Vec<i32> = cluster.nodes.iter().map(|node| node.id).collect();
        let round = n / 3;
        let (asked, metadata) = ids
            .iter()
            .find_map(|id| Some((*id, cluster.metadata(*id).ok()?)))
            .ok_or("no node answers Metadata")?;
        let (victim, role) = match n % 3 {
            0 => {
                let partition = i32::try_from(round).unwrap_or(0) % PARTITIONS;
                let leader = cluster::leader_of(&metadata, JEPSEN_TOPIC, partition);
                (leader, format!("leader of {JEPSEN_TOPIC}-{partition}"))
            }
            1 => {
                let id = transactional_id(round % PRODUCERS);
                let (node, _) =
                    RawClient::connect(cluster.address(asked))?.transaction_coordinator(&id)?;
                (node, format!("coordinator of {id}"))
            }
            _ => (ids[round % ids.len()], "in turn".into()),
        };
        if !ids.contains(&victim) {
            return Err(format!("fault {n}: no node is the {role} ({victim})"));
        }
        cluster.kill(victim);
        let what = format!("node {victim} ({role})");
        mark_nodes(cluster, &format!("SIGKILL {what}: {why}"));
        let survivor = ids
            .iter()
            .copied()
            .find(|id| *id != victim)
            .unwrap_or(victim);
        wait_partitions(cluster, survivor, &format!("{what} failed over"), |p| {
            p.replica_nodes.len() < 2 || (p.leader_id.0 >= 0 && p.leader_id.0 != victim)
        })?;
        cluster.restart(victim);
        mark_nodes(cluster, &format!("{what} restarted"));
        wait_partitions(cluster, victim, &format!("{what} back in sync"), |p| {
            p.leader_id.0 >= 0 && p.isr_nodes.len() == p.replica_nodes.len()
        })?;
        Ok(what)
    }
}

/// Appends a marker line to every node's log.
fn mark_nodes(cluster: &Cluster, text: &str) {
    for node in &cluster.nodes {
        if let Ok(mut log) = OpenOptions::new().create(true).append(true).open(&node.log) {
            let _ = writeln!(log, "===== crash test: {text} =====");
        }
    }
}

/// Transactional ids a broker lists (ListTransactions) without being
/// their coordinator: Kafka's brokers list only the ids of the
/// `__transaction_state` partitions they lead, and the admin client
/// merges every broker's list.
fn strays(nodes: &[SocketAddr]) -> Result<Vec<String>, String> {
    let mut strays = Vec::new();
    for node in nodes {
        let mut raw = RawClient::connect(*node)?;
        for id in raw.list_transactions()? {
            let (_, coordinator) = raw.transaction_coordinator(&id)?;
            if coordinator != *node {
                strays.push(format!(
                    "ListTransactions of {node} lists {id}, coordinated by {coordinator}"
                ));
            }
        }
    }
    Ok(strays)
}

/// Waits (up to [`FAILOVER_DEADLINE`]) until node `via`'s Metadata shows
/// `done` of every partition of every topic.
fn wait_partitions(
    cluster: &Cluster,
    via: i32,
    what: &str,
    done: impl Fn(&MetadataResponsePartition) -> bool,
) -> Result<(), String> {
    let deadline = Instant::now() + FAILOVER_DEADLINE;
    loop {
        let seen = cluster.metadata(via);
        if let Ok(m) = &seen {
            if m.topics.iter().all(|t| t.partitions.iter().all(&done)) {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: not within {FAILOVER_DEADLINE:?} (node {via}'s last Metadata: {seen:?})"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(super) fn jepsen_transactions(run: &mut Run) -> Result<String, String> {
    run.start_broker()?;
    create_named_topic(run.address, JEPSEN_TOPIC, PARTITIONS)?;
    run.stop_broker()?;
    run.start_broker()?;
    workload(run, &mut Brokers::One, &ONE_NODE)
}

/// The same workload and checks against three nodes, the faults those of
/// [`Brokers::Cluster`]; then every partition's replicas (of the topic and
/// of `__transaction_state`) must be byte-identical.
pub(super) fn jepsen_transactions_cluster(run: &mut Run) -> Result<String, String> {
    let cluster = Cluster::start_with(3, &CLUSTER_SETTINGS);
    cluster.create_topic(&[1, 2, 3], JEPSEN_TOPIC, PARTITIONS, 3);
    let mut brokers = Brokers::Cluster(cluster);
    let result = workload(run, &mut brokers, &CLUSTER).and_then(|summary| {
        let Brokers::Cluster(cluster) = &brokers else {
            return Err("not a cluster".into());
        };
        let identical = identical_replicas(cluster)?;
        Ok(format!("{summary}; {identical}"))
    });
    // The nodes' dirs and logs are the cluster's own: kept as the run's.
    let keep = result.is_err() || std::env::var_os(KEEP_VAR).is_some();
    if let (true, Brokers::Cluster(cluster)) = (keep, &mut brokers) {
        if let Some(dir) = cluster.dir.take() {
            let kept = dir.keep();
            return result
                .map(|summary| format!("{summary}; cluster kept in {}", kept.display()))
                .map_err(|e| format!("{e}\ncluster data and logs kept in {}", kept.display()));
        }
    }
    result
}

/// Waits until the replicas of every partition of [`JEPSEN_TOPIC`] and of
/// `__transaction_state` that holds records are byte-identical on the
/// nodes that host them; says how many and how many bytes.
fn identical_replicas(cluster: &Cluster) -> Result<String, String> {
    let m = cluster.metadata(1)?;
    let (mut partitions, mut bytes) = (0, 0);
    for topic in [JEPSEN_TOPIC, "__transaction_state"] {
        let Some(listed) = cluster::topic(&m, topic) else {
            return Err(format!("Metadata does not list {topic}"));
        };
        for p in &listed.partitions {
            let replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
            let written = replicas.iter().any(|id| {
                !cluster::partition_bytes(cluster, *id, topic, p.partition_index).is_empty()
            });
            if written {
                bytes += cluster::wait_identical(cluster, &replicas, topic, p.partition_index);
                partitions += 1;
            }
        }
    }
    Ok(format!(
        "replicas byte-identical: {partitions} partitions, {bytes} bytes each copy in all"
    ))
}

/// Runs the producers, the live reader and `plan`'s faults against
/// `brokers`, then the final read and [`check`]; the summary line.
fn workload(run: &mut Run, brokers: &mut Brokers, plan: &Plan) -> Result<String, String> {
    let nodes = brokers.nodes(run);
    let bootstrap = brokers.bootstrap(run);
    let live = LiveReader::start(&bootstrap)?;
    let producers = Producers::new(run, plan.txns, bootstrap.clone())?;
    let paths = &producers.histories;
    for p in 0..PRODUCERS {
        let child = producers.spawn(p)?;
        run.children.others.push(Some(child));
    }

    let deadline = Instant::now() + WORKLOAD_DEADLINE;
    let (mut broker_kills, mut producer_kills) = (Vec::new(), Vec::new());
    let mut faults = Vec::new();
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    let (mut last_ended, mut last_progress) = (0, Instant::now());
    loop {
        let histories = paths
            .iter()
            .map(|p| History::read(p))
            .collect::<Result<Vec<_>, _>>()?;
        let ended: usize = histories.iter().map(|h| h.outcomes.len()).sum();
        if ended != last_ended {
            (last_ended, last_progress) = (ended, Instant::now());
        }
        // Reap finished producers.
        for (p, slot) in run.children.others.iter_mut().enumerate() {
            if let Some(child) = slot.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut report = String::new();
                    if let Some(mut stdout) = child.stdout.take() {
                        let _ = stdout.read_to_string(&mut report);
                    }
                    if !status.success() {
                        failures.push(format!("producer {p} exited with {status}"));
                    }
                    reports.push(report.trim().to_owned());
                    *slot = None;
                }
            }
        }
        if run.children.others.iter().all(Option::is_none) {
            break;
        }
        if let Some(mark) = plan.faults_after.get(broker_kills.len()) {
            if ended >= *mark {
                let why = format!("{ended} transactions ended");
                faults.push(brokers.fault(run, broker_kills.len(), &why)?);
                broker_kills.push(ended);
                continue;
            }
        }
        if let Some(mark) = plan.producer_kills_after.get(producer_kills.len()) {
            // The next producer in turn that is running and has a
            // transaction open (one its current process began: the history
            // of a restarted one ends in its predecessor's `begin` at first).
            let victim = (0..PRODUCERS)
                .map(|i| (producer_kills.len() + i) % PRODUCERS)
                .find_map(|p| {
                    let running = matches!(run.children.others.get(p), Some(Some(_)));
                    let fresh = |n: &usize| !producer_kills.contains(&(p, *n));
                    Some((p, histories[p].open.filter(|n| running && fresh(n))?))
                });
            if let (true, Some((p, n))) = (ended >= *mark, victim) {
                if let Some(child) = run.children.others[p].take() {
                    kill(child);
                }
                brokers.mark(run, &format!("producer {p} SIGKILLed in transaction {n}"));
                producer_kills.push((p, n));
                run.children.others[p] = Some(producers.spawn(p)?);
            }
        }
        if Instant::now() > deadline || last_progress.elapsed() > PROGRESS_DEADLINE {
            return Err(format!(
                "the producers did not finish: {ended} transactions ended, the last \
                 {:?} ago; broker kills at {broker_kills:?}",
                last_progress.elapsed()
            ));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    faults.push(brokers.fault(run, broker_kills.len(), "producers finished")?);

    let histories = paths
        .iter()
        .map(|p| History::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    let (open, offsets) = wait_until_settled(&nodes, JEPSEN_TOPIC, PARTITIONS)?;
    if !open.is_empty() {
        failures.push(format!("transactions still open: {open:?}"));
    }
    for (p, (lso, hw)) in &offsets {
        if lso != hw {
            failures.push(format!("partition {p}: LSO {lso} < high watermark {hw}"));
        }
    }
    failures.extend(strays(&nodes)?);
    // The Java client on transaction version 2 bumps its epoch with every
    // transaction; on version 1 only each InitProducerId would (a handful
    // here).
    let mut java = String::new();
    if producers.java.is_some() {
        let id = transactional_id(PRODUCERS - 1);
        let (_, coordinator) = RawClient::connect(nodes[0])?.transaction_coordinator(&id)?;
        let epoch = RawClient::connect(coordinator)?.producer_epoch(&id)?;
        java = format!(
            "; producer {} is the Java client, epoch {epoch}",
            PRODUCERS - 1
        );
        if epoch < 20 {
            failures.push(format!(
                "the Java producer's epoch is {epoch}: it did not use transaction version 2"
            ));
        }
    }
    let ends: BTreeMap<i32, i64> = offsets.iter().map(|(p, (_, hw))| (*p, *hw)).collect();
    let last: Vec<Seen> = consume_committed(&bootstrap, JEPSEN_TOPIC, &ends)?
        .into_iter()
        .map(|r| Seen {
            partition: r.partition,
            offset: r.offset,
            value: r.value,
        })
        .collect();
    // Let the live reader catch up with the final log before stopping it.
    let tails: BTreeMap<i32, i64> = last.iter().map(|s| (s.partition, s.offset)).collect();
    let caught_up_by = Instant::now() + CLIENT_DEADLINE;
    while Instant::now() < caught_up_by {
        let seen = live.seen();
        if tails
            .iter()
            .all(|(p, o)| seen.iter().any(|s| s.partition == *p && s.offset == *o))
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (seen, reader_errors) = live.finish();

    let statuses: Vec<BTreeMap<usize, TxnOutcome>> =
        histories.iter().map(History::statuses).collect();
    failures.extend(check(&statuses, &last, &seen));
    let resets: Vec<&String> = reader_errors
        .iter()
        .filter(|e| e.contains("reset") || e.contains("OutOfRange"))
        .collect();
    if !resets.is_empty() {
        failures.push(format!("the live reader's offsets were reset: {resets:?}"));
    }
    for (p, history) in histories.iter().enumerate() {
        if history.begun.len() != plan.txns {
            failures.push(format!(
                "producer {p} began {} of {} transactions",
                history.begun.len(),
                plan.txns
            ));
        }
    }
    if broker_kills.len() < plan.faults_after.len()
        || producer_kills.len() < plan.producer_kills_after.len()
    {
        failures.push(format!(
            "not every fault happened: broker kills at {broker_kills:?}, producer kills \
             {producer_kills:?}"
        ));
    }
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for status in statuses.iter().flat_map(BTreeMap::values) {
        *kinds.entry(status.as_str()).or_default() += 1;
    }
    let kills = match brokers {
        Brokers::One => format!("broker SIGKILLs at {broker_kills:?} ended and once after"),
        Brokers::Cluster(_) => format!(
            "node kills at {broker_kills:?} ended and once after: {}",
            faults.join(", ")
        ),
    };
    let summary = format!(
        "{} transactions by {PRODUCERS} producers ({kinds:?}); {kills}; producers killed \
         mid-transaction \
         (producer, transaction) {producer_kills:?}; final log {} records; live reader {} \
         records ({} transient errors){java}; reports: {}",
        statuses.iter().map(BTreeMap::len).sum::<usize>(),
        last.len(),
        seen.len(),
        reader_errors.len(),
        reports.join(" | ")
    );
    if failures.is_empty() {
        Ok(format!("no anomaly: {summary}"))
    } else {
        Err(format!("{summary}\n{}", failures.join("\n")))
    }
}

/// Every anomaly in the final log (`last`) and the live reads (`seen`),
/// given each producer's transaction statuses.
fn check(statuses: &[BTreeMap<usize, TxnOutcome>], last: &[Seen], seen: &[Seen]) -> Vec<String> {
    const SHOWN: usize = 8;
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
    let status = |w: Write| {
        statuses
            .get(w.producer)
            .and_then(|s| s.get(&w.txn))
            .copied()
    };
    let place = |s: &Seen| format!("({}, {}) {:?}", s.partition, s.offset, s.value);

    // Garbage: values nobody wrote, or in another key's partition.
    let parse = |s: &Seen| Write::parse(&s.value).filter(|w| w.partition() == s.partition);
    for (name, reads) in [("final log", last), ("live reader", seen)] {
        report(
            &format!("{name}: values nobody wrote there"),
            reads
                .iter()
                .filter(|s| parse(s).is_none())
                .map(place)
                .collect(),
        );
        report(
            &format!(
                "{name}: aborted reads (a value of an aborted, abandoned or unbegun transaction)"
            ),
            reads
                .iter()
                .filter_map(|s| Some((s, parse(s)?)))
                .filter(|(_, w)| {
                    !matches!(
                        status(*w),
                        Some(TxnOutcome::Committed | TxnOutcome::Unknown)
                    )
                })
                .map(|(s, w)| format!("{} from a transaction {:?}", place(s), status(w)))
                .collect(),
        );
        let mut offsets: HashMap<&str, BTreeSet<(i32, i64)>> = HashMap::new();
        for s in reads {
            offsets
                .entry(s.value.as_str())
                .or_default()
                .insert((s.partition, s.offset));
        }
        let mut duplicates: Vec<String> = offsets
            .iter()
            .filter(|(_, at)| at.len() > 1)
            .map(|(value, at)| format!("{value} at {at:?}"))
            .collect();
        duplicates.sort();
        report(&format!("{name}: duplicates"), duplicates);
    }

    // Lost writes and atomicity, against the final log.
    let present: BTreeSet<Write> = last.iter().filter_map(parse).collect();
    let mut lost = Vec::new();
    let mut torn = Vec::new();
    for (producer, txns) in statuses.iter().enumerate() {
        for (txn, outcome) in txns {
            let (writes, _) = txn_plan(producer, *txn);
            let found = writes.iter().filter(|w| present.contains(w)).count();
            match outcome {
                TxnOutcome::Committed if found < writes.len() => lost.push(format!(
                    "{producer}/{txn}: {found} of {} writes",
                    writes.len()
                )),
                TxnOutcome::Unknown if found != 0 && found != writes.len() => torn.push(format!(
                    "{producer}/{txn}: {found} of {} writes",
                    writes.len()
                )),
                _ => {}
            }
        }
    }
    report(
        "lost writes (committed transactions not whole in the final log)",
        lost,
    );
    report("torn transactions (an unknown one partly visible)", torn);

    // The live reader against the final log, partition by partition.
    let at: HashMap<(i32, i64), &str> = last
        .iter()
        .map(|s| ((s.partition, s.offset), s.value.as_str()))
        .collect();
    report(
        "inconsistent offsets (the live reader saw another value there)",
        seen.iter()
            .filter(|s| at.get(&(s.partition, s.offset)) != Some(&s.value.as_str()))
            .map(|s| {
                format!(
                    "{} live, final {:?}",
                    place(s),
                    at.get(&(s.partition, s.offset))
                )
            })
            .collect(),
    );
    let (mut backwards, mut skipped) = (Vec::new(), Vec::new());
    for partition in 0..PARTITIONS {
        let final_offsets: BTreeSet<i64> = last
            .iter()
            .filter(|s| s.partition == partition)
            .map(|s| s.offset)
            .collect();
        let live: Vec<i64> = seen
            .iter()
            .filter(|s| s.partition == partition)
            .map(|s| s.offset)
            .collect();
        let mut previous = -1;
        for offset in live.iter().copied().chain([i64::MAX]) {
            if offset <= previous {
                backwards.push(format!("partition {partition}: {previous} then {offset}"));
            } else if let Some(missed) = final_offsets.range(previous + 1..offset).next() {
                skipped.push(format!(
                    "partition {partition}: from {previous} to {} past {missed}",
                    if offset == i64::MAX {
                        "the end".to_owned()
                    } else {
                        offset.to_string()
                    }
                ));
            }
            previous = previous.max(offset);
        }
    }
    report("nonmonotonic polls (the live reader went back)", backwards);
    report(
        "poll skips (the live reader jumped over a committed record)",
        skipped,
    );

    // Per-key order: each producer's writes to a key in send order.
    let mut order: BTreeMap<(usize, u64), (i64, Write)> = BTreeMap::new();
    let mut reordered = Vec::new();
    let mut sorted: Vec<&Seen> = last.iter().collect();
    sorted.sort_by_key(|s| (s.partition, s.offset));
    for s in sorted {
        let Some(w) = parse(s) else { continue };
        if let Some((offset, before)) = order.insert((w.producer, w.key), (s.offset, w)) {
            if (before.txn, before.index) >= (w.txn, w.index) {
                reordered.push(format!(
                    "{} at {offset} before {} at {}",
                    before.value(),
                    w.value(),
                    s.offset
                ));
            }
        }
    }
    report("per-key order broken", reordered);
    failures
}

/// The checker finds each anomaly it claims to find, in planted
/// histories (a case of its own: this binary has no libtest harness).
pub(super) fn jepsen_checker_finds_planted_anomalies(_: &mut Run) -> Result<String, String> {
    let (a, commit_a) = txn_plan(2, 17);
    if (a.clone(), commit_a) != txn_plan(2, 17) || a.is_empty() || a.len() > 9 {
        return Err(format!("plan 2/17 unstable or out of bounds: {a:?}"));
    }
    if let Some(w) = a.iter().find(|w| Write::parse(&w.value()) != Some(**w)) {
        return Err(format!("{w:?} does not parse back"));
    }
    let aborts = (0..400).filter(|n| !txn_plan(1, *n).1).count();
    if !(50..150).contains(&aborts) {
        return Err(format!("{aborts} of 400 planned transactions abort"));
    }

    let (committed, _) = txn_plan(0, 0);
    let (aborted, _) = txn_plan(0, 1);
    let statuses = vec![BTreeMap::from([
        (0, TxnOutcome::Committed),
        (1, TxnOutcome::Aborted),
    ])];
    // Writes laid out as a log: dense offsets per partition.
    let log = |writes: &[Write]| -> Vec<Seen> {
        let mut next: BTreeMap<i32, i64> = BTreeMap::new();
        writes
            .iter()
            .map(|w| {
                let offset = next.entry(w.partition()).or_default();
                *offset += 1;
                Seen {
                    partition: w.partition(),
                    offset: *offset - 1,
                    value: w.value(),
                }
            })
            .collect()
    };
    let good = log(&committed);
    let clean = check(&statuses, &good, &good);
    if !clean.is_empty() {
        return Err(format!("a clean history reported: {clean:?}"));
    }
    let mut skipping = good.clone();
    skipping.remove(0);
    let mut swapped = committed.clone();
    swapped.swap(0, committed.len() - 1);
    swapped.retain(|w| w.key == committed[0].key);
    let planted = [
        (
            "aborted reads",
            log(&[committed.clone(), aborted].concat()),
            good.clone(),
        ),
        ("lost writes", log(&committed[1..]), log(&committed[1..])),
        ("poll skips", good.clone(), skipping),
        (
            "duplicates",
            log(&[committed.clone(), committed.clone()].concat()),
            good.clone(),
        ),
        ("inconsistent offsets", good.clone(), log(&committed[1..])),
    ];
    let mut found = Vec::new();
    for (anomaly, last, seen) in planted {
        let failures = check(&statuses, &last, &seen);
        if !failures.iter().any(|f| f.contains(anomaly)) {
            return Err(format!(
                "planted {anomaly} not reported; reported: {failures:?}"
            ));
        }
        found.push(anomaly);
    }
    Ok(format!("found every planted anomaly: {found:?}"))
}
