//! The network layer: one accept loop, one task per connection, responses
//! in request order. It moves frames between sockets and the codec and
//! never knows what a Produce is.

mod connection;
pub mod metrics;

pub use connection::Connection;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::broker::Broker;
use crate::cluster::quorum::{
    Balancing, ControllerSecurity, Liveness, MetadataCommand, MetadataQuorum, ProposeError,
    QuorumConfig,
};
use crate::cluster::ListenerEndpoint;
use crate::config::{BrokerConfig, Roles};
use crate::error::{Error, Result};
use crate::security::sasl::{Authenticator, Step};
use crate::security::{ListenerSecurity, Session};
use crate::{api, protocol};

/// A broker that is serving: its address, its state, and the handle that
/// stops it.
#[derive(Debug)]
pub struct RunningBroker {
    /// The first client listener's address (the inter-broker listener's).
    local_addr: SocketAddr,
    /// Every client listener's name and bound address.
    listener_addrs: Vec<(String, SocketAddr)>,
    broker: Arc<Broker>,
    /// The metadata quorum this node is a member of, if any.
    quorum: Option<Arc<MetadataQuorum>>,
    shutdown: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
    /// `process.roles=controller`: no broker to fence at shutdown.
    controller_only: bool,
}

/// Settings every connection task needs.
#[derive(Debug, Clone, Copy)]
struct ConnectionLimits {
    max_frame: usize,
    idle: Duration,
    /// `connection.failed.authentication.delay.ms`: a failed SASL
    /// authentication closes the connection after this long.
    failed_authentication_delay: Duration,
}

/// A bound client listener.
struct BoundListener {
    socket: TcpListener,
    local_addr: SocketAddr,
    security: Arc<ListenerSecurity>,
    /// What the broker registers for it.
    endpoint: ListenerEndpoint,
}

/// Binds every client listener, the inter-broker listener first (its
/// address is the one registered for other brokers).
async fn bind_listeners(config: &BrokerConfig) -> Result<Vec<BoundListener>> {
    let specs = config.client_listeners()?;
    let inter_broker = Some(config.inter_broker_spec()?.name);
    let mut bound = Vec::with_capacity(specs.len());
    for spec in specs {
        let security = Arc::new(ListenerSecurity::new(config, &spec)?);
        let socket = bind(&spec.bind).await?;
        let local_addr = socket.local_addr().map_err(|source| Error::Bind {
            address: spec.bind.clone(),
            source,
        })?;
        let (host, port) = advertised(spec.advertised.as_deref(), local_addr)?;
        let endpoint = ListenerEndpoint {
            name: spec.name.clone(),
            host,
            port: i32::from(port),
        };
        bound.push(BoundListener {
            socket,
            local_addr,
            security,
            endpoint,
        });
    }
    if let Some(at) = inter_broker.and_then(|name| {
        bound
            .iter()
            .position(|l| l.endpoint.name.eq_ignore_ascii_case(&name))
    }) {
        bound[..=at].rotate_right(1);
    }
    Ok(bound)
}

impl RunningBroker {
    /// Binds the listener, opens the data dir and starts serving.
    ///
    /// # Errors
    /// The address cannot be bound, the advertised listener is malformed,
    /// or the data dir is unusable.
    pub async fn start(config: BrokerConfig) -> Result<Self> {
        if config.process_roles()? == Roles::Controller {
            return Self::start_controller(config).await;
        }
        let listeners = bind_listeners(&config).await?;
        let endpoints: Vec<ListenerEndpoint> =
            listeners.iter().map(|l| l.endpoint.clone()).collect();
        let local_addr = listeners[0].local_addr;
        let limits = ConnectionLimits {
            max_frame: usize::try_from(config.get_i64("socket.request.max.bytes"))
                .unwrap_or(usize::MAX),
            idle: Duration::from_millis(
                u64::try_from(config.get_i64("connections.max.idle.ms")).unwrap_or(u64::MAX),
            ),
            failed_authentication_delay: Duration::from_millis(
                u64::try_from(config.get_i64("connection.failed.authentication.delay.ms"))
                    .unwrap_or(0),
            ),
        };
        let data_dir = config.data_dir();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (broker, quorum) = match controllers(&config)? {
            None => (Arc::new(Broker::open(config, endpoints.clone())?), None),
            Some(voters) => {
                let (broker, quorum) = join_quorum(config, voters, &endpoints).await?;
                let broker = Arc::new(broker);
                broker.start_replication();
                tokio::spawn(follow_quorum(
                    broker.clone(),
                    quorum.clone(),
                    shutdown_rx.clone(),
                ));
                (broker, Some(quorum))
            }
        };
        let listener_addrs: Vec<(String, SocketAddr)> = listeners
            .iter()
            .map(|l| (l.endpoint.name.clone(), l.local_addr))
            .collect();
        info!(
            version = env!("CARGO_PKG_VERSION"),
            listeners = %listeners
                .iter()
                .map(|l| format!("{}://{} ({}, advertised {}:{})", l.endpoint.name, l.local_addr,
                    l.security.protocol.name(), l.endpoint.host, l.endpoint.port))
                .collect::<Vec<_>>()
                .join(", "),
            data_dir = %data_dir.display(),
            node_id = broker.node_id(),
            cluster_id = %broker.cluster().cluster_id,
            "strom started"
        );
        let check_interval =
            u64::try_from(broker.config().get_i64("log.retention.check.interval.ms"))
                .unwrap_or(1000);
        tokio::spawn(group_timer_loop(broker.clone(), shutdown_rx.clone()));
        tokio::spawn(maintenance_loop(
            broker.clone(),
            Duration::from_millis(check_interval.clamp(1, 1000)),
            shutdown_rx.clone(),
        ));
        tokio::spawn(cleaner_loop(broker.clone(), shutdown_rx.clone()));
        let accept_loop = tokio::spawn(accept_loop(listeners, broker.clone(), limits, shutdown_rx));
        Ok(Self {
            local_addr,
            listener_addrs,
            broker,
            quorum,
            shutdown,
            accept_loop,
            controller_only: false,
        })
    }

    /// A controller that is no broker (`process.roles=controller`): a
    /// metadata quorum voter on its controller listener, serving no
    /// clients and hosting no partitions; it agrees on the cluster id but
    /// does not register as a broker. `local_addr` is the controller
    /// listener's.
    async fn start_controller(config: BrokerConfig) -> Result<Self> {
        let voters = config.quorum_voters()?.ok_or_else(|| {
            Error::Config(crate::config::ConfigError::InvalidValue {
                message: "a controller needs the voters: set controller.quorum.voters".into(),
                origin: "process.roles".into(),
            })
        })?;
        let data_dir = config.data_dir();
        let (quorum, db, cluster_id, local_addr) = start_voter(&config, &voters).await?;
        let node_id = config.node_id();
        let membership = crate::cluster::Membership::Quorum {
            quorum: quorum.clone(),
            cluster_id: cluster_id.clone(),
            node_id,
        };
        let broker = Arc::new(tokio::task::block_in_place(|| {
            Broker::open_member(config, db, membership)
        })?);
        info!(
            version = env!("CARGO_PKG_VERSION"),
            controller_listener = %local_addr,
            data_dir = %data_dir.display(),
            node_id,
            cluster_id = %cluster_id,
            "strom started (controller only)"
        );
        let (shutdown, mut shutdown_rx) = watch::channel(false);
        let accept_loop = tokio::spawn(async move {
            let _ = shutdown_rx.changed().await;
        });
        Ok(Self {
            local_addr,
            listener_addrs: Vec::new(),
            broker,
            quorum: Some(quorum),
            shutdown,
            accept_loop,
            controller_only: true,
        })
    }

    /// The address the first client listener is bound to (the
    /// inter-broker listener; on a controller only, the controller's).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound address of the client listener `name`.
    pub fn listener_addr(&self, name: &str) -> Option<SocketAddr> {
        self.listener_addrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }

    /// Serves `/metrics` (Prometheus) and `/health` over HTTP on `address`
    /// until the broker stops; returns the bound address.
    ///
    /// # Errors
    /// [`Error::Bind`] naming the address.
    pub async fn serve_metrics(&self, address: &str) -> Result<SocketAddr> {
        let listener = bind(address).await?;
        let local = listener.local_addr().map_err(|source| Error::Bind {
            address: address.to_owned(),
            source,
        })?;
        tokio::spawn(metrics::serve(
            listener,
            self.broker.clone(),
            self.shutdown.subscribe(),
        ));
        info!(address = %local, "serving /metrics and /health");
        Ok(local)
    }

    /// The broker's shared state.
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops accepting, lets every connection finish the request it is
    /// running, then flushes the metadata store.
    ///
    /// # Errors
    /// The final flush fails.
    pub async fn shutdown(self) -> Result<()> {
        if let Some(quorum) = self.quorum.as_ref().filter(|_| !self.controller_only) {
            // Controlled shutdown: leadership moves to the other in-sync
            // replicas before this node stops serving (as Kafka's
            // ControlledShutdown), so clients fail over at once.
            let fenced = tokio::time::timeout(Duration::from_secs(5), quorum.leave()).await;
            match fenced {
                Ok(Ok(_)) => info!("moved partition leadership away"),
                _ => warn!("could not move partition leadership away before stopping"),
            }
        }
        let _ = self.shutdown.send(true);
        self.broker.groups.unload();
        if let Err(e) = self.accept_loop.await {
            error!(cause = %e, "accept loop ended abnormally");
        }
        self.broker.stop_replication();
        if let Some(quorum) = &self.quorum {
            quorum.shutdown().await;
        }
        self.broker.flush()?;
        info!("strom stopped");
        Ok(())
    }
}

/// Binds a listener on `address`.
///
/// # Errors
/// [`Error::Bind`] naming the address.
async fn bind(address: &str) -> Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .map_err(|source| Error::Bind {
            address: address.to_owned(),
            source,
        })
}

/// Joins the metadata quorum (`controller.quorum.voters`): binds the
/// controller listener, starts this node's Raft member, agrees on the
/// cluster id (the first one proposed; checked against the data dir's
/// `meta.properties`), registers this broker, and opens the broker over
/// the quorum's metadata. Waits for a quorum leader up to
/// `initial.broker.registration.timeout.ms`, as Kafka's broker does.
async fn join_quorum(
    config: BrokerConfig,
    controllers: BTreeMap<i32, String>,
    endpoints: &[ListenerEndpoint],
) -> Result<(Broker, Arc<MetadataQuorum>)> {
    let node_id = config.node_id();
    let (quorum, db, cluster_id) = if config.process_roles()? == Roles::Broker {
        if controllers.contains_key(&node_id) && config.quorum_voters()?.is_some() {
            return Err(Error::Config(crate::config::ConfigError::InvalidValue {
                message: format!(
                    "a broker only (process.roles=broker) must not be a voter, but node.id \
                     {node_id} is in controller.quorum.voters"
                ),
                origin: "process.roles".into(),
            }));
        }
        let db = open_member_store(&config)?;
        let security = ControllerSecurity::from_config(&config, false)?;
        let quorum =
            MetadataQuorum::start_observer(node_id, controllers, liveness(&config), &security)
                .map_err(Error::Quorum)?;
        let cluster_id = agree_on_cluster_id(&config, &quorum).await?;
        (quorum, db, cluster_id)
    } else {
        let (quorum, db, cluster_id, _) = start_voter(&config, &controllers).await?;
        (quorum, db, cluster_id)
    };
    let registered = propose_until_answered(
        &config,
        &quorum,
        MetadataCommand::RegisterBroker {
            node_id,
            incarnation: uuid::Uuid::new_v4().to_string(),
            host: endpoints[0].host.clone(),
            port: endpoints[0].port,
            rack: config.get("broker.rack").map(str::to_owned),
            listeners: endpoints.to_vec(),
        },
    )
    .await?;
    info!(
        node_id,
        epoch = registered.broker_epoch,
        leader = quorum.leader(),
        "registered with the metadata quorum"
    );
    let membership = crate::cluster::Membership::Quorum {
        quorum: quorum.clone(),
        cluster_id,
        node_id,
    };
    let broker = tokio::task::block_in_place(|| Broker::open_member(config, db, membership))?;
    Ok((broker, quorum))
}

/// The controllers a node of a cluster talks to: the voters
/// (`controller.quorum.voters`), or for a broker that is no controller
/// the `controller.quorum.bootstrap.servers` (numbered from 1: only their
/// addresses matter to it). `None` for the zero-config single node.
///
/// # Errors
/// Malformed or missing settings.
fn controllers(config: &BrokerConfig) -> Result<Option<BTreeMap<i32, String>>> {
    if let Some(voters) = config.quorum_voters()? {
        return Ok(Some(voters));
    }
    let bootstrap = config.quorum_bootstrap_servers();
    let roles = config.process_roles()?;
    if roles == Roles::Broker {
        if bootstrap.is_empty() {
            return Err(Error::Config(crate::config::ConfigError::InvalidValue {
                message: "a broker only needs the controllers: set controller.quorum.voters \
                          or controller.quorum.bootstrap.servers"
                    .into(),
                origin: "process.roles".into(),
            }));
        }
        return Ok(Some((1..).zip(bootstrap).collect()));
    }
    Ok(None)
}

/// `broker.heartbeat.interval.ms` and `broker.session.timeout.ms`.
fn liveness(config: &BrokerConfig) -> Liveness {
    let millis = |key: &str| Duration::from_millis(u64::try_from(config.get_i64(key)).unwrap_or(0));
    Liveness {
        interval: millis("broker.heartbeat.interval.ms").max(Duration::from_millis(10)),
        session: millis("broker.session.timeout.ms").max(Duration::from_millis(100)),
    }
}

/// Starts this node's Raft member as a voter (`controller.quorum.voters`
/// must name it): binds the controller listener, opens the metadata
/// store, waits for a quorum leader (up to
/// `initial.broker.registration.timeout.ms`, as Kafka's broker does) and
/// agrees on the cluster id (the first one proposed; checked against the
/// data dir's `meta.properties`).
async fn start_voter(
    config: &BrokerConfig,
    voters: &BTreeMap<i32, String>,
) -> Result<(Arc<MetadataQuorum>, sled::Db, String, SocketAddr)> {
    let node_id = config.node_id();
    let Some(own) = voters.get(&node_id) else {
        return Err(Error::Config(crate::config::ConfigError::InvalidValue {
            message: format!("node.id {node_id} is not one of the voters {voters:?}"),
            origin: "controller.quorum.voters".into(),
        }));
    };
    let address = config
        .controller_listen_address()
        .unwrap_or_else(|| own.clone());
    let listener = bind(&address).await?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        address: address.clone(),
        source,
    })?;
    let db = open_member_store(config)?;
    let election =
        u64::try_from(config.get_i64("controller.quorum.election.timeout.ms")).unwrap_or(1000);
    let quorum = MetadataQuorum::start(
        QuorumConfig {
            node_id,
            voters: voters.clone(),
            listener,
            election_timeout_ms: election,
            liveness: liveness(config),
            balancing: Balancing {
                auto_rebalance: config.get_bool("auto.leader.rebalance.enable"),
                check_interval: Duration::from_secs(
                    u64::try_from(config.get_i64("leader.imbalance.check.interval.seconds"))
                        .unwrap_or(300),
                ),
                unclean: config.get_bool("unclean.leader.election.enable"),
            },
            security: Arc::new(ControllerSecurity::from_config(config, true)?),
        },
        &db,
    )
    .await
    .map_err(Error::Quorum)?;
    info!(node_id, voters = ?voters, "waiting for the metadata quorum");
    let cluster_id = agree_on_cluster_id(config, &quorum).await?;
    Ok((quorum, db, cluster_id, local_addr))
}

/// Proposes a new cluster id (the first one proposed wins) and checks
/// the one in force against the data dir's `meta.properties`.
async fn agree_on_cluster_id(config: &BrokerConfig, quorum: &MetadataQuorum) -> Result<String> {
    let agreed = propose_until_answered(
        config,
        quorum,
        MetadataCommand::InitCluster {
            cluster_id: crate::cluster::new_cluster_id(),
        },
    )
    .await?;
    let cluster_id = agreed
        .cluster_id
        .ok_or_else(|| Error::Quorum("no cluster id".into()))?;
    let data_dir = config.data_dir();
    crate::cluster::check_cluster_id(&data_dir, config.node_id(), &cluster_id).map_err(
        |source| Error::DataDir {
            path: data_dir.clone(),
            source,
        },
    )?;
    Ok(cluster_id)
}

/// Proposes `command`, retrying while no quorum leader is known, up to
/// `initial.broker.registration.timeout.ms`.
async fn propose_until_answered(
    config: &BrokerConfig,
    quorum: &MetadataQuorum,
    command: MetadataCommand,
) -> Result<crate::cluster::quorum::MetadataResult> {
    let deadline = std::time::Instant::now()
        + Duration::from_millis(
            u64::try_from(config.get_i64("initial.broker.registration.timeout.ms"))
                .unwrap_or(60_000),
        );
    loop {
        match quorum.propose(command.clone()).await {
            Err(ProposeError::NotLeader { .. }) if std::time::Instant::now() < deadline => {}
            other => return other.map_err(|e| Error::Quorum(e.to_string())),
        }
    }
}

/// The metadata store of a cluster member's data dir (created if new);
/// a single node's data dir is refused.
///
/// # Errors
/// The data dir is not writable, the store cannot be opened, or it holds
/// a single node's topics.
fn open_member_store(config: &BrokerConfig) -> Result<sled::Db> {
    let data_dir = config.data_dir();
    crate::broker::check_writable(&data_dir).map_err(|source| Error::DataDir {
        path: data_dir.clone(),
        source,
    })?;
    let db = crate::store::open(&data_dir.join("meta"))?;
    refuse_single_node_data(&db, &data_dir)?;
    Ok(db)
}

/// A data dir a single node wrote (topics, no quorum state) cannot join a
/// quorum: its topics are not the cluster's, and following the quorum's
/// image would delete them.
///
/// # Errors
/// [`Error::DataDir`] naming the dir.
fn refuse_single_node_data(db: &sled::Db, data_dir: &std::path::Path) -> Result<()> {
    let has = |tree: &str| db.open_tree(tree).map(|t| !t.is_empty());
    let (topics, quorum) = (has("topics")?, has("raft_state")?);
    if topics && !quorum {
        return Err(Error::DataDir {
            path: data_dir.to_owned(),
            source: std::io::Error::other(
                "it holds the topics of a single-node broker; a new cluster member needs an empty data dir",
            ),
        });
    }
    Ok(())
}

/// Brings this node's topics and replicas in line with every new metadata
/// image, and proposes ISR shrinks for lagging followers.
async fn follow_quorum(
    broker: Arc<Broker>,
    quorum: Arc<MetadataQuorum>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut images = quorum.subscribe();
    let mut isr_checks = tokio::time::interval(Duration::from_millis(500));
    loop {
        tokio::select! {
            changed = images.changed() => if changed.is_err() { return },
            _ = isr_checks.tick() => {
                broker.check_isr();
                continue;
            }
            _ = shutdown.changed() => return,
        }
        let broker = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || broker.sync_topics()).await {
            error!(cause = %e, "applying the metadata image failed");
        }
    }
}

/// The advertised `host:port`: the operator's `advertised.listeners`, else
/// the bound address (an unspecified bind address advertises the host name).
fn advertised(configured: Option<&str>, bound: SocketAddr) -> Result<(String, u16)> {
    if let Some(address) = configured {
        let parsed = address.rsplit_once(':').and_then(|(host, port)| {
            Some((host.trim_matches(['[', ']']).to_owned(), port.parse().ok()?))
        });
        return parsed.filter(|(host, _)| !host.is_empty()).ok_or_else(|| {
            Error::Config(crate::config::ConfigError::InvalidValue {
                message: format!("advertised listener '{address}' is not host:port"),
                origin: "advertised.listeners".into(),
            })
        });
    }
    let host = if bound.ip().is_unspecified() {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into())
    } else {
        bound.ip().to_string()
    };
    Ok((host, bound.port()))
}

/// Runs retention and time-based flushing every `period` until shutdown.
/// A pass blocks on disk, so it runs on the blocking pool.
async fn maintenance_loop(
    broker: Arc<Broker>,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.changed() => return,
        }
        let broker = broker.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || broker.maintain()).await {
            error!(cause = %e, "maintenance pass failed");
        }
    }
}

/// Runs log cleaner passes (`log.cleaner.threads`: one at a time, on the
/// blocking pool) until shutdown: at once again after a pass that cleaned
/// a log, `log.cleaner.backoff.ms` later otherwise. Off with
/// `log.cleaner.enable=false` or `log.cleaner.threads=0`.
async fn cleaner_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let config = broker.config();
    if !config.get_bool("log.cleaner.enable") || config.get_i64("log.cleaner.threads") < 1 {
        return;
    }
    loop {
        let backoff = u64::try_from(broker.config().get_i64("log.cleaner.backoff.ms")).unwrap_or(0);
        let (pass, stop) = (broker.clone(), shutdown.clone());
        let cleaned = tokio::task::spawn_blocking(move || pass.clean_logs(&|| *stop.borrow()))
            .await
            .unwrap_or_else(|e| {
                error!(cause = %e, "cleaner pass failed");
                false
            });
        if *shutdown.borrow() {
            return;
        }
        if !cleaned {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(backoff)) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

/// How often group timers (sessions, rebalance deadlines) are checked:
/// the precision of `session.timeout.ms` and rebalance timeouts.
const GROUP_TICK: Duration = Duration::from_millis(100);

/// Expires group sessions and finishes timed-out rebalances until shutdown.
async fn group_timer_loop(broker: Arc<Broker>, mut shutdown: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(GROUP_TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => broker.groups.tick(),
            _ = shutdown.changed() => return,
        }
    }
}

/// Accepts on every client listener until shutdown, then waits for every
/// connection to finish.
async fn accept_loop(
    listeners: Vec<BoundListener>,
    broker: Arc<Broker>,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
) {
    // Each connection task holds a sender; when all are dropped, `recv`
    // returns None and every connection is done (mini-redis's pattern).
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let slots = Arc::new(ConnectionSlots::default());
    let loops: Vec<_> = listeners
        .into_iter()
        .map(|listener| {
            tokio::spawn(accept_on(
                listener,
                broker.clone(),
                limits,
                slots.clone(),
                done_tx.clone(),
                shutdown.clone(),
            ))
        })
        .collect();
    drop(done_tx);
    for handle in loops {
        if let Err(e) = handle.await {
            error!(cause = %e, "a listener's accept loop ended abnormally");
        }
    }
    let _ = done_rx.recv().await;
}

/// Accepts on one listener until shutdown.
async fn accept_on(
    listener: BoundListener,
    broker: Arc<Broker>,
    limits: ConnectionLimits,
    slots: Arc<ConnectionSlots>,
    done: mpsc::Sender<()>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut config = broker.watch_config();
    loop {
        let slot = tokio::select! {
            slot = slots.wait_for_slot(&mut config) => slot,
            _ = shutdown.changed() => break,
        };
        let (socket, peer) = tokio::select! {
            accepted = accept_with_backoff(&listener.socket) => accepted,
            _ = shutdown.changed() => break,
        };
        debug!(%peer, listener = %listener.endpoint.name, "accepted connection");
        let task = ConnectionTask {
            broker: broker.clone(),
            security: listener.security.clone(),
            limits,
            shutdown: shutdown.clone(),
            _done: done.clone(),
            _slot: slot,
        };
        tokio::spawn(task.run(socket, peer));
    }
}

/// Counts open connections against `max.connections`, which can change
/// while the broker runs (a dynamic cluster-wide key in Kafka): a lower
/// limit closes nobody, it only holds back new connections, as in Kafka.
#[derive(Default)]
struct ConnectionSlots {
    /// Incremented by the accept loops, decremented by [`ConnectionSlot`]s.
    open: AtomicUsize,
    /// Signalled whenever a connection ends.
    closed: Notify,
}

impl ConnectionSlots {
    /// Waits until fewer than `max.connections` are open, then takes a slot.
    async fn wait_for_slot(
        self: &Arc<Self>,
        config: &mut watch::Receiver<Arc<BrokerConfig>>,
    ) -> ConnectionSlot {
        loop {
            let limit = usize::try_from(config.borrow_and_update().get_i64("max.connections"))
                .unwrap_or(usize::MAX);
            // Every listener's accept loop takes slots: check and take at once.
            let taken = self
                .open
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |open| {
                    (open < limit).then_some(open + 1)
                });
            if taken.is_ok() {
                return ConnectionSlot(self.clone());
            }
            tokio::select! {
                _ = self.closed.notified() => {}
                Ok(()) = config.changed() => {}
            }
        }
    }
}

/// One open connection's place under `max.connections`; freed on drop.
struct ConnectionSlot(Arc<ConnectionSlots>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
        self.0.closed.notify_one();
    }
}

/// Accepts one connection; on an accept error (e.g. out of file
/// descriptors) backs off 1 ms, 2 ms, ... up to 1 s and retries.
async fn accept_with_backoff(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    let mut backoff = Duration::from_millis(1);
    loop {
        match listener.accept().await {
            Ok(accepted) => return accepted,
            Err(e) => {
                warn!(cause = %e, "accept failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// What one connection task owns besides its socket.
struct ConnectionTask {
    broker: Arc<Broker>,
    security: Arc<ListenerSecurity>,
    limits: ConnectionLimits,
    shutdown: watch::Receiver<bool>,
    /// Dropped when the task ends: tells the accept loop this one is done.
    _done: mpsc::Sender<()>,
    /// Holds a place under `max.connections`.
    _slot: ConnectionSlot,
}

/// What the connection does after a request.
enum Next {
    Continue,
    Close,
}

impl ConnectionTask {
    /// Secures the socket (TLS handshake), then serves requests one at a
    /// time, in order, until the client leaves, a frame is bad, the
    /// connection idles out, authentication fails, or the broker shuts down.
    async fn run(mut self, socket: TcpStream, peer: SocketAddr) {
        let idle = self.limits.idle;
        let (mut connection, certificate) = match self.security.tls() {
            None => (Connection::new(socket, peer, self.limits.max_frame), None),
            Some(tls) => match tokio::time::timeout(idle, tls.accept(socket)).await {
                Ok(Ok((stream, certificate))) => (
                    Connection::tls(stream, peer, self.limits.max_frame),
                    certificate,
                ),
                Ok(Err(e)) => {
                    info!(%peer, listener = %self.security.name, cause = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    debug!(%peer, "TLS handshake timed out");
                    return;
                }
            },
        };
        let subject = certificate
            .as_deref()
            .and_then(crate::security::principal::certificate_subject);
        let mut session = Session {
            peer,
            listener: self.security.name.clone(),
            principal: self.security.principal_from_certificate(subject.as_deref()),
        };
        let _counted = self.broker.metrics().connection_opened(&self.security.name);
        let mut sasl = self.security.sasl().map(|s| Authenticator::new(s.clone()));
        if let Some(sasl) = &sasl {
            connection.set_max_frame(sasl.max_receive_size().min(self.limits.max_frame));
        }
        loop {
            let frame = tokio::select! {
                read = tokio::time::timeout(idle, connection.read_frame()) => match read {
                    Ok(Ok(Some(frame))) => frame,
                    Ok(Ok(None)) => break,
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                        warn!(%peer, cause = %e, "closing connection: bad frame");
                        break;
                    }
                    Ok(Err(e)) => {
                        debug!(%peer, cause = %e, "client went away");
                        break;
                    }
                    Err(_) => {
                        debug!(%peer, "closing idle connection");
                        break;
                    }
                },
                _ = self.shutdown.changed() => break,
            };
            let next = match sasl.as_mut() {
                Some(auth) if auth.expects_raw_token() => {
                    self.raw_token(&mut connection, &mut session, auth, &frame)
                        .await
                }
                _ => {
                    self.request(&mut connection, &mut session, sasl.as_mut(), frame)
                        .await
                }
            };
            if matches!(next, Next::Close) {
                break;
            }
        }
        debug!(%peer, "connection closed");
    }

    /// One Kafka request.
    async fn request(
        &self,
        connection: &mut Connection,
        session: &mut Session,
        sasl: Option<&mut Authenticator>,
        frame: bytes::Bytes,
    ) -> Next {
        let peer = session.peer;
        let request = match protocol::decode_request(frame) {
            Ok(request) => request,
            Err(protocol::DecodeError::Refused {
                key,
                version,
                response,
            }) => {
                debug!(%peer, ?key, version, "refused request");
                if let Some(bytes) = response {
                    if let Err(e) = connection.write_frame(bytes.into()).await {
                        debug!(%peer, cause = %e, "client went away");
                        return Next::Close;
                    }
                }
                return Next::Continue;
            }
            Err(e) => {
                warn!(%peer, cause = %e, "closing connection: undecodable request");
                return Next::Close;
            }
        };
        let header = request.header.clone();
        let started = std::time::Instant::now();
        let mut close_after = false;
        let reply = if api::is_sasl(&request) {
            let exchange = api::sasl_exchange(&self.broker, sasl, request);
            if let Some(principal) = exchange.authenticated {
                info!(%peer, listener = %session.listener, %principal, "authenticated");
                session.principal = principal;
                connection.set_max_frame(self.limits.max_frame);
            }
            close_after = exchange.close;
            match exchange.reply {
                Some(reply) => reply,
                None => {
                    tokio::time::sleep(self.limits.failed_authentication_delay).await;
                    return Next::Close;
                }
            }
        } else {
            if let Some(auth) = sasl {
                if auth.in_exchange() {
                    // Kafka's SaslServerAuthenticator mid-exchange: only
                    // SaslAuthenticate; anything else gets its error
                    // response (ILLEGAL_SASL_STATE) where strom can build
                    // one, and the connection closes.
                    info!(%peer, api_key = header.request_api_key,
                        "closing connection: request other than SaslAuthenticate during SASL authentication");
                    if let Some(reply) = api::illegal_sasl_state(&request) {
                        if let Ok(frame) = protocol::encode_response(&header, &reply.body, &[]) {
                            let _ = connection.write_frame(frame).await;
                        }
                    }
                    return Next::Close;
                }
                if !auth.is_authenticated() && header.request_api_key != ApiKey::ApiVersions as i16
                {
                    // Kafka's IllegalSaslStateException: closed, no answer.
                    info!(%peer, api_key = header.request_api_key,
                        "closing connection: request before SASL authentication");
                    return Next::Close;
                }
            }
            match api::dispatch(&self.broker, session, request).await {
                Ok(Some(reply)) => reply,
                Ok(None) => return Next::Continue,
                Err(e) => {
                    error!(%peer, cause = %e, "closing connection");
                    return Next::Close;
                }
            }
        };
        let frame = match protocol::encode_response(&header, &reply.body, &reply.regions) {
            Ok(frame) => frame,
            Err(e) => {
                error!(%peer, cause = %e, "closing connection");
                return Next::Close;
            }
        };
        if let Err(e) = connection.write_frame(frame).await {
            debug!(%peer, cause = %e, "client went away");
            return Next::Close;
        }
        self.broker
            .metrics()
            .record_request(header.request_api_key, started.elapsed());
        if tracing::enabled!(tracing::Level::DEBUG) {
            let api = ApiKey::try_from(header.request_api_key)
                .map_or_else(|_| header.request_api_key.to_string(), |k| format!("{k:?}"));
            debug!(
                %peer,
                client_id = header.client_id.as_deref().unwrap_or(""),
                %api,
                version = header.request_api_version,
                correlation_id = header.correlation_id,
                latency_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
                "request"
            );
        }
        if close_after {
            info!(%peer, listener = %session.listener, "closing connection: SASL authentication failed");
            tokio::time::sleep(self.limits.failed_authentication_delay).await;
            return Next::Close;
        }
        Next::Continue
    }

    /// A raw SASL token (after a v0 SaslHandshake): answered raw; a
    /// failure closes the connection.
    async fn raw_token(
        &self,
        connection: &mut Connection,
        session: &mut Session,
        auth: &mut Authenticator,
        token: &[u8],
    ) -> Next {
        let peer = session.peer;
        let step = auth.authenticate(token, &|user, mechanism| {
            self.broker.scram_credential(user, mechanism)
        });
        let answer = match step {
            Step::Continue(answer) => answer,
            Step::Done { response, .. } => {
                if let Some(principal) = auth.principal() {
                    info!(%peer, listener = %session.listener, %principal, "authenticated");
                    session.principal = principal.clone();
                }
                connection.set_max_frame(self.limits.max_frame);
                response
            }
            Step::Failed(message) | Step::Abort(message) => {
                info!(%peer, %message, "closing connection: SASL authentication failed");
                tokio::time::sleep(self.limits.failed_authentication_delay).await;
                return Next::Close;
            }
            Step::OutOfOrder => return Next::Close,
        };
        match connection.write_raw_frame(&answer).await {
            Ok(()) => Next::Continue,
            Err(_) => Next::Close,
        }
    }
}
