//! The cluster harness of the process-level tests (`cargo test --test
//! cluster`, and the crash tests' Jepsen-style checker against a
//! cluster): three real `strom` processes on 127.0.0.1 (own ports and
//! data dirs) sharing `controller.quorum.voters`.
//!
//! [`Cluster`]: free ports for the client and controller listeners, one
//! log per node (`DIR/node-N.log`, kept when a test panics), start waits
//! for every node's `strom started` line, SIGKILL, SIGTERM, SIGSTOP/SIGCONT
//! and restart per node, and every process killed on drop (panics
//! included). With [`Netns`] each node runs in a network namespace of its
//! own behind a bridge, so one node's link can be cut and healed
//! (namespaces deleted on drop). Included with `#[path]` (as
//! `raw_client.rs`, which it uses) by both test binaries.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_protocol::messages::{ApiKey, MetadataRequest, MetadataResponse};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use super::raw_client::{RawClient, CLIENT_DEADLINE};

const STROM: &str = env!("CARGO_BIN_EXE_strom");
/// How long a node may take to start (the quorum needs a majority up).
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// One node's ports, data dir and process.
pub struct Node {
    pub id: i32,
    pub client: SocketAddr,
    /// A second port, for a listener of the test's own (`{extra}` in a
    /// setting).
    pub extra: SocketAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub starts: usize,
}

/// Three strom processes forming one cluster.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub voters: String,
    /// Extra `--set key=value` settings of every node; `{client}` and
    /// `{extra}` stand for the node's own ports.
    pub settings: Vec<String>,
    /// Extra command-line arguments of every node (`--add-scram ...`).
    pub args: Vec<String>,
    pub dir: Option<tempfile::TempDir>,
    /// The network namespaces the nodes run in, if any (dropped after
    /// the nodes are killed).
    pub net: Option<Netns>,
}

/// A loopback port nobody listens on, below Linux's ephemeral range
/// (32768 and up): an OS-chosen port could be taken by any outgoing
/// connection before the node binds it. Ports are handed out in turn
/// from a start that depends on the process id, so parallel tests and
/// parallel runs rarely meet.
pub fn free_port() -> SocketAddr {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = 20_000 + (std::process::id() % 600) * 20;
    loop {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = u16::try_from(20_000 + (start - 20_000 + n) % 12_000).unwrap_or(20_000);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        if TcpListener::bind(address).is_ok() {
            return address;
        }
    }
}

/// The `ip` tool (iproute2), run by absolute path: nodes start with an
/// empty environment.
pub const IP: &str = "/usr/sbin/ip";

/// Network namespaces for a cluster whose links can be cut: node N runs
/// in namespace `<prefix>nN` with address `10.A.B.N`, its veth's other
/// end a port of a bridge in the hub namespace `<prefix>h`, which the
/// test process (root namespace, `10.A.B.254`) reaches through a veth of
/// its own. Names and subnet come from the process id, so parallel runs
/// do not meet. Every namespace (and with it every veth) is deleted on
/// drop, panics included.
pub struct Netns {
    pub prefix: String,
    pub subnet: [u8; 3],
    pub nodes: Vec<i32>,
}

impl Netns {
    /// Builds the namespaces and links for nodes `1..=n`; why not, when the
    /// system does not allow it (not root, no `ip`, no veth or bridge).
    pub fn create(n: i32) -> Result<Self, String> {
        let pid = std::process::id();
        let net = Self {
            prefix: format!("st{pid}"),
            subnet: [
                10,
                200 + u8::try_from(pid % 50).unwrap_or(0),
                u8::try_from(pid / 50 % 250).unwrap_or(0),
            ],
            nodes: (1..=n).collect(),
        };
        // Leftovers of an earlier process with this id.
        net.remove();
        let hub = net.hub();
        let root = format!("{}r", net.prefix);
        let root_peer = format!("{}h", net.prefix);
        let root_address = format!("{}/24", net.ip(254));
        let mut steps: Vec<Vec<String>> = vec![
            vec!["netns", "add", &hub],
            vec!["-n", &hub, "link", "set", "lo", "up"],
            vec!["-n", &hub, "link", "add", "br0", "type", "bridge"],
            vec!["-n", &hub, "link", "set", "br0", "up"],
            vec![
                "link", "add", &root, "type", "veth", "peer", "name", &root_peer,
            ],
            vec!["link", "set", &root_peer, "netns", &hub],
            vec!["-n", &hub, "link", "set", &root_peer, "master", "br0", "up"],
            vec!["addr", "add", &root_address, "dev", &root],
            vec!["link", "set", &root, "up"],
        ]
        .into_iter()
        .map(|step| step.into_iter().map(str::to_owned).collect())
        .collect();
        for id in 1..=n {
            let ns = net.node(id);
            let (port, inner) = (net.port(id), format!("{}b{id}", net.prefix));
            let address = format!("{}/24", net.ip(u8::try_from(id).unwrap_or(0)));
            steps.extend(
                [
                    vec!["netns", "add", &ns],
                    vec!["-n", &ns, "link", "set", "lo", "up"],
                    vec!["link", "add", &port, "type", "veth", "peer", "name", &inner],
                    vec!["link", "set", &port, "netns", &hub],
                    vec!["link", "set", &inner, "netns", &ns],
                    vec!["-n", &hub, "link", "set", &port, "master", "br0", "up"],
                    vec!["-n", &ns, "addr", "add", &address, "dev", &inner],
                    vec!["-n", &ns, "link", "set", &inner, "up"],
                ]
                .into_iter()
                .map(|step| step.into_iter().map(str::to_owned).collect()),
            );
        }
        for step in steps {
            net.ip_command(&step)?;
        }
        Ok(net)
    }

    pub fn ip_command(&self, args: &[String]) -> Result<(), String> {
        let output = Command::new(IP)
            .args(args)
            .output()
            .map_err(|e| format!("{IP}: {e}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr).trim()
            ))
        }
    }

    pub fn hub(&self) -> String {
        format!("{}h", self.prefix)
    }

    /// Node `id`'s namespace.
    pub fn node(&self, id: i32) -> String {
        format!("{}n{id}", self.prefix)
    }

    /// The hub's end of node `id`'s link.
    pub fn port(&self, id: i32) -> String {
        format!("{}a{id}", self.prefix)
    }

    pub fn ip(&self, host: u8) -> std::net::Ipv4Addr {
        let [a, b, c] = self.subnet;
        std::net::Ipv4Addr::new(a, b, c, host)
    }

    /// Node `id`'s address with `port`.
    pub fn address(&self, id: i32, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip(u8::try_from(id).unwrap_or(0)), port))
    }

    /// Cuts (`up` false) or heals node `id`'s only link: packets to and
    /// from it are dropped, connections are not closed.
    pub fn link(&self, id: i32, up: bool) {
        let args = [
            "-n",
            &self.hub(),
            "link",
            "set",
            &self.port(id),
            if up { "up" } else { "down" },
        ]
        .map(str::to_owned);
        self.ip_command(&args).expect("set the link");
    }

    pub fn remove(&self) {
        let mut names: Vec<String> = self.nodes.iter().map(|id| self.node(*id)).collect();
        names.push(self.hub());
        for name in names {
            let _ = Command::new(IP)
                .args(["netns", "del", &name])
                .stderr(Stdio::null())
                .status();
        }
        let _ = Command::new(IP)
            .args(["link", "del", &format!("{}r", self.prefix)])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

impl Cluster {
    /// Starts `n` nodes and waits until each has joined.
    pub fn start(n: i32) -> Self {
        Self::start_with(n, &[])
    }

    /// As [`Cluster::start`], every node with the extra `key=value` settings.
    pub fn start_with(n: i32, settings: &[&str]) -> Self {
        Self::start_in(n, settings, None)
    }

    /// As [`Cluster::start_with`]; with `net`, node N runs in `net`'s
    /// namespace N and listens on its address there, else on loopback.
    pub fn start_in(n: i32, settings: &[&str], net: Option<Netns>) -> Self {
        Self::start_with_args(n, settings, &[], net)
    }

    /// As [`Cluster::start_in`], every node also given `args`.
    pub fn start_with_args(n: i32, settings: &[&str], args: &[&str], net: Option<Netns>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("strom-cluster-")
            .tempdir()
            .expect("temp dir");
        let mut voters = Vec::new();
        let mut nodes = Vec::new();
        for id in 1..=n {
            let (client, controller, extra) = match &net {
                Some(net) => (
                    net.address(id, 9092),
                    net.address(id, 9093),
                    net.address(id, 9094),
                ),
                None => (free_port(), free_port(), free_port()),
            };
            voters.push(format!("{id}@{controller}"));
            nodes.push(Node {
                id,
                client,
                extra,
                dir: dir.path().join(format!("node-{id}")),
                log: dir.path().join(format!("node-{id}.log")),
                child: None,
                starts: 0,
            });
        }
        let mut cluster = Self {
            nodes,
            voters: voters.join(","),
            settings: settings.iter().map(|s| (*s).to_owned()).collect(),
            args: args.iter().map(|s| (*s).to_owned()).collect(),
            dir: Some(dir),
            net,
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_started(i);
        }
        cluster
    }

    pub fn spawn(&mut self, i: usize) {
        let voters = self.voters.clone();
        let settings = self.settings.clone();
        let args = self.args.clone();
        let mut command = match &self.net {
            // `ip netns exec` execs strom in place: the child is strom.
            Some(net) => {
                let mut command = Command::new(IP);
                command.args(["netns", "exec", &net.node(self.nodes[i].id), STROM]);
                command
            }
            None => Command::new(STROM),
        };
        let node = &mut self.nodes[i];
        node.starts += 1;
        let settings: Vec<String> = settings
            .iter()
            .map(|s| {
                s.replace("{client}", &node.client.to_string())
                    .replace("{extra}", &node.extra.to_string())
            })
            .collect();
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("node log");
        let child = command
            .arg("--listen")
            .arg(node.client.to_string())
            .arg("--data-dir")
            .arg(&node.dir)
            .args(["--node-id", &node.id.to_string()])
            .args(["--set", &format!("controller.quorum.voters={voters}")])
            .args(["--set", "controller.quorum.election.timeout.ms=500"])
            .args(["--set", "group.initial.rebalance.delay.ms=0"])
            .args(settings.iter().flat_map(|s| ["--set", s.as_str()]))
            .args(&args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start strom");
        node.child = Some(child);
    }

    pub fn wait_started(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            if text.matches("strom started").count() >= node.starts
                && TcpStream::connect_timeout(&node.client, Duration::from_secs(1)).is_ok()
            {
                return;
            }
            if let Some(Ok(Some(status))) = node.child.as_mut().map(Child::try_wait) {
                panic!("node {} exited with {status}:\n{text}", node.id);
            }
            assert!(
                Instant::now() < deadline,
                "node {} not up within {START_DEADLINE:?}:\n{text}",
                node.id
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILLs node `id`.
    pub fn kill(&mut self, id: i32) {
        let node = self.node_mut(id);
        if let Some(mut child) = node.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends node `id` the signal `name` (`STOP`, `CONT`, `TERM`).
    pub fn signal(&self, id: i32, name: &str) {
        let node = &self.nodes[self.index(id)];
        let pid = node.child.as_ref().expect("running").id().to_string();
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &pid])
            .status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "kill -{name} node {id} ({pid})"
        );
    }

    /// Stops node `id` with SIGTERM and waits for it to exit; its status.
    pub fn terminate(&mut self, id: i32) -> std::process::ExitStatus {
        self.signal(id, "TERM");
        let node = self.node_mut(id);
        let mut child = node.child.take().expect("running");
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            assert!(Instant::now() < deadline, "node {id} did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `id` again on its ports and data dir.
    pub fn restart(&mut self, id: i32) {
        let i = self.index(id);
        self.spawn(i);
        self.wait_started(i);
    }

    pub fn index(&self, id: i32) -> usize {
        self.nodes
            .iter()
            .position(|n| n.id == id)
            .expect("known node")
    }

    pub fn node_mut(&mut self, id: i32) -> &mut Node {
        let i = self.index(id);
        &mut self.nodes[i]
    }

    pub fn address(&self, id: i32) -> SocketAddr {
        self.nodes[self.index(id)].client
    }

    /// Metadata (v12) for every topic, asked of node `id`.
    pub fn metadata(&self, id: i32) -> Result<MetadataResponse, String> {
        RawClient::connect(self.address(id))?.call(
            ApiKey::Metadata,
            12,
            &MetadataRequest::default().with_topics(None),
        )
    }

    /// Waits until `done` holds for node `id`'s Metadata.
    pub fn wait_metadata(
        &self,
        id: i32,
        what: &str,
        done: impl Fn(&MetadataResponse) -> bool,
    ) -> MetadataResponse {
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let seen = self.metadata(id);
            match &seen {
                Ok(m) if done(m) => return m.clone(),
                _ if Instant::now() > deadline => {
                    panic!("node {id}: {what} not within {START_DEADLINE:?}; last: {seen:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    pub fn admin(&self, ids: &[i32]) -> AdminClient<DefaultClientContext> {
        ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap(ids))
            .create()
            .expect("admin client")
    }

    /// `host:port` of nodes `ids`, comma-separated.
    pub fn bootstrap(&self, ids: &[i32]) -> String {
        ids.iter()
            .map(|id| self.address(*id).to_string())
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn create_topic(&self, via: &[i32], name: &str, partitions: i32, replicas: i32) {
        let admin = self.admin(via);
        let options = AdminOptions::new().request_timeout(Some(CLIENT_DEADLINE));
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(replicas));
        let results = futures::executor::block_on(admin.create_topics([&topic], &options))
            .expect("create topics");
        for result in results {
            result.unwrap_or_else(|(name, code)| panic!("create {name}: {code}"));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("cluster data and logs kept in {}", dir.keep().display());
            }
        }
    }
}

/// The bytes of node `id`'s segment files of `topic`-`partition`, in order.
pub fn partition_bytes(cluster: &Cluster, id: i32, topic: &str, partition: i32) -> Vec<u8> {
    let dir = cluster.nodes[cluster.index(id)]
        .dir
        .join("logs")
        .join(format!("{topic}-{partition}"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .flat_map(|f| std::fs::read(f).unwrap_or_default())
        .collect()
}

/// Waits until every node in `ids` holds the same bytes for the partition.
pub fn wait_identical(cluster: &Cluster, ids: &[i32], topic: &str, partition: i32) -> usize {
    let deadline = Instant::now() + START_DEADLINE;
    loop {
        let copies: Vec<Vec<u8>> = ids
            .iter()
            .map(|id| partition_bytes(cluster, *id, topic, partition))
            .collect();
        if !copies[0].is_empty() && copies.iter().all(|c| *c == copies[0]) {
            return copies[0].len();
        }
        let sizes: Vec<usize> = copies.iter().map(Vec::len).collect();
        assert!(
            Instant::now() < deadline,
            "replicas of {topic}-{partition} differ: sizes {sizes:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn isr(m: &MetadataResponse, topic_name: &str, partition: i32) -> Vec<i32> {
    topic(m, topic_name)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .map(|p| p.isr_nodes.iter().map(|b| b.0).collect())
        .unwrap_or_default()
}

pub fn topic<'a>(
    m: &'a MetadataResponse,
    name: &str,
) -> Option<&'a kafka_protocol::messages::metadata_response::MetadataResponseTopic> {
    m.topics
        .iter()
        .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some(name))
}

/// Waits until node `via` lists every partition of `topic` with all three
/// replicas in sync.
pub fn wait_all_in_sync(cluster: &Cluster, via: i32, topic_name: &str) -> MetadataResponse {
    cluster.wait_metadata(via, "every replica in sync", |m| {
        topic(m, topic_name).is_some_and(|t| {
            !t.partitions.is_empty() && t.partitions.iter().all(|p| p.isr_nodes.len() == 3)
        })
    })
}

/// The leader of `topic`-`partition` in `m` (-1 if it has none, -2 if
/// `m` does not list it).
pub fn leader_of(m: &MetadataResponse, topic_name: &str, partition: i32) -> i32 {
    topic(m, topic_name)
        .and_then(|t| t.partitions.iter().find(|p| p.partition_index == partition))
        .map_or(-2, |p| p.leader_id.0)
}
