//! [`Broker`]: the state every handler works on, and the few operations
//! that span layers (a topic is both registry metadata and log directories).
//! `transactions.rs`: the broker's part in transactions across brokers.

mod acls;
mod credentials;
mod transactions;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;

use crate::cluster::peers::Peers;
use crate::cluster::quorum::{
    MetadataCommand, MetadataImage, MetadataResult, PartitionState, ProposeError, Refusal,
};
use crate::cluster::{
    self, BrokerEndpoint, ClusterInfo, DynamicConfigStore, Membership, ProducerIdManager,
    TopicMeta, TopicRegistry,
};
use crate::config::{BrokerConfig, DynamicScope};
use crate::error::{ApiError, Error, Result};
use crate::group::{GroupCoordinator, GroupTimeouts, OFFSETS_TOPIC};
use crate::log::{self, LogConfig, LogManager};
use crate::replica::fetcher::{Fetchers, ReplicaLogs};
use crate::replica::{IsrChange, ReplicaManager};
use crate::txn::{TransactionCoordinator, TXN_TOPIC};

/// The broker's shared state. Handlers get `&Broker`; every field is safe
/// to use from many connection tasks at once.
#[derive(Debug)]
pub struct Broker {
    /// Every setting: a snapshot replaced whole when a dynamic config
    /// changes (a watch channel, so the server can react to a new one).
    config: tokio::sync::watch::Sender<Arc<BrokerConfig>>,
    /// Where dynamic broker configs are stored.
    dynamic_configs: DynamicConfigStore,
    /// SCRAM credentials of a single node (a cluster's are in the quorum's
    /// image); see `credentials.rs`.
    credentials: cluster::credentials::CredentialStore,
    /// ACLs of a single node (a cluster's are in the quorum's image); see
    /// `acls.rs`.
    acls: cluster::acls::AclStore,
    /// `authorizer.class.name`: `None` allows everything.
    authorizer: Option<crate::security::acl::Authorizer>,
    /// Alone, or a member of the metadata quorum.
    membership: Membership,
    /// Topic metadata (in a cluster, this node's copy of the quorum's).
    pub topics: TopicRegistry,
    /// Partition data on disk.
    pub logs: LogManager,
    /// Consumer groups and committed offsets (state kept in `__consumer_offsets`).
    pub groups: Arc<GroupCoordinator>,
    /// Transactional ids and their transactions (state kept in `__transaction_state`).
    pub txns: Arc<TransactionCoordinator>,
    db: sled::Db,
    /// Producer ids, in durably reserved blocks.
    producer_ids: ProducerIdManager,
    /// The leader side of partition replication (a cluster only).
    replicas: Arc<ReplicaManager>,
    /// The follower fetchers, once started (a cluster only).
    fetchers: std::sync::OnceLock<Fetchers>,
    /// Connections to the other brokers (transaction markers and
    /// verification; see `transactions.rs`).
    peers: Peers,
    /// How connections to the other brokers are secured (the fetchers';
    /// `peers` has its own copy).
    peer_security: crate::security::client::PeerSecurity,
    /// Serialises the creation of internal topics on first use.
    internal_topics: std::sync::Mutex<()>,
    /// Serialises topic creation, growth, deletion and config changes: each
    /// spans the registry and the log directories (a topic re-created by
    /// name while its deletion is half done would lose its new files), and
    /// a broker config change re-applies every topic's log settings.
    topic_changes: std::sync::Mutex<()>,
    /// Serialises this node's dynamic broker config changes in a cluster
    /// (on one node `topic_changes` does).
    broker_config_changes: std::sync::Mutex<()>,
    /// Traffic counters (`/metrics`).
    metrics: crate::metrics::Metrics,
}

impl Broker {
    /// Opens the data dir (creating it on first start) and loads all state.
    /// `listeners` are the addresses clients are told to connect to, one
    /// per client listener (the first is the one other brokers use).
    ///
    /// # Errors
    /// The data dir is not writable, or the metadata store cannot be opened.
    pub fn open(config: BrokerConfig, listeners: Vec<cluster::ListenerEndpoint>) -> Result<Self> {
        let data_dir = config.data_dir();
        let node_id = config.node_id();
        let dir_error = |source| Error::DataDir {
            path: data_dir.clone(),
            source,
        };
        check_writable(&data_dir).map_err(dir_error)?;
        let cluster_id =
            cluster::load_or_create_cluster_id(&data_dir, node_id).map_err(dir_error)?;
        let db = crate::store::open(&data_dir.join("meta"))?;
        let membership = Membership::Single(ClusterInfo {
            cluster_id,
            node_id,
            brokers: vec![BrokerEndpoint {
                node_id,
                host: listeners
                    .first()
                    .map(|l| l.host.clone())
                    .unwrap_or_default(),
                port: listeners.first().map_or(0, |l| l.port),
                rack: config.get("broker.rack").map(str::to_owned),
                listeners,
            }],
            fenced: Vec::new(),
            controller_id: node_id,
        });
        Self::open_with(config, db, membership)
    }

    /// Opens the broker of a quorum member: `db` is the metadata store the
    /// quorum already uses; topics are brought in line with the quorum's.
    ///
    /// # Errors
    /// As [`Broker::open`].
    pub fn open_member(config: BrokerConfig, db: sled::Db, membership: Membership) -> Result<Self> {
        let broker = Self::open_with(config, db, membership)?;
        broker.sync_topics();
        Ok(broker)
    }

    fn open_with(config: BrokerConfig, db: sled::Db, membership: Membership) -> Result<Self> {
        let data_dir = config.data_dir();
        let dir_error = |source| Error::DataDir {
            path: data_dir.clone(),
            source,
        };
        let topics = TopicRegistry::open(&db)?;
        let dynamic_configs = DynamicConfigStore::open(&db)?;
        let credentials = cluster::credentials::CredentialStore::open(&db)?;
        let acls = cluster::acls::AclStore::open(&db)?;
        // How this node reaches the others' inter-broker listener (a
        // single node, or a controller only, reaches nobody).
        let peer_security = if membership.quorum().is_some()
            && config.process_roles()? != crate::config::Roles::Controller
        {
            let spec = config.inter_broker_spec()?;
            crate::security::client::PeerSecurity::from_config(
                &config,
                &spec.name,
                spec.protocol,
                "sasl.mechanism.inter.broker.protocol",
            )?
        } else {
            crate::security::client::PeerSecurity::plaintext()
        };
        let authorizer =
            crate::security::acl::Authorizer::from_config(&config).map_err(|message| {
                Error::Config(crate::config::ConfigError::InvalidValue {
                    message,
                    origin: "authorizer.class.name".into(),
                })
            })?;
        let config = config
            .with_dynamic(
                DynamicScope::ClusterDefault,
                dynamic_configs.load(DynamicScope::ClusterDefault)?,
            )
            .with_dynamic(
                DynamicScope::Broker,
                dynamic_configs.load(DynamicScope::Broker)?,
            );
        let logs = LogManager::open(&data_dir, db.clone()).map_err(dir_error)?;
        if membership.quorum().is_some() {
            logs.open_as_replicated();
        }
        let millis = |key: &str| {
            std::time::Duration::from_millis(u64::try_from(config.get_i64(key)).unwrap_or(0))
        };
        let timeouts = GroupTimeouts {
            initial_delay: millis("group.initial.rebalance.delay.ms"),
            min_session: millis("group.min.session.timeout.ms"),
            max_session: millis("group.max.session.timeout.ms"),
        };
        let offsets_retention = millis("offsets.retention.minutes") * 60;
        let groups = Arc::new(GroupCoordinator::new(
            db.clone(),
            timeouts,
            offsets_retention,
        ));
        let txns = Arc::new(TransactionCoordinator::new(
            i32::try_from(config.get_i64("transaction.max.timeout.ms")).unwrap_or(900_000),
            config.get_i64("transactional.id.expiration.ms"),
        ));
        let mut producer_ids = ProducerIdManager::open(&db)?;
        if let Some(quorum) = membership.quorum() {
            // Ids unique across the cluster: blocks from the quorum.
            let (quorum, node_id) = (quorum.clone(), membership.node_id());
            producer_ids = producer_ids.with_source(Box::new(move |size| {
                let quorum = quorum.clone();
                let command = MetadataCommand::AllocateProducerIds { node_id, size };
                wait_for(async move { quorum.propose(command).await })
                    .map_err(|e| e.to_string())?
                    .producer_id_block
                    .ok_or_else(|| "no producer id block".to_owned())
            }));
        }
        let replicas = Arc::new(ReplicaManager::new(
            membership.node_id(),
            std::time::Duration::from_millis(
                u64::try_from(config.get_i64("replica.lag.time.max.ms")).unwrap_or(30_000),
            ),
        ));
        let broker = Self {
            config: tokio::sync::watch::Sender::new(Arc::new(config)),
            dynamic_configs,
            credentials,
            acls,
            authorizer,
            membership,
            replicas,
            fetchers: std::sync::OnceLock::new(),
            topics,
            logs,
            groups,
            txns,
            producer_ids,
            db,
            peers: Peers::new(peer_security.clone()),
            peer_security,
            internal_topics: std::sync::Mutex::new(()),
            topic_changes: std::sync::Mutex::new(()),
            broker_config_changes: std::sync::Mutex::new(()),
            metrics: crate::metrics::Metrics::default(),
        };
        let now = log::now_ms();
        for meta in broker.topics.all() {
            let config = broker.log_config(&meta.configs);
            broker
                .logs
                .open_partitions(&meta.name, 0, meta.partition_count(), &config, now)
                .map_err(dir_error)?;
        }
        for which in [InternalTopic::Offsets, InternalTopic::Transactions] {
            if broker.topics.get(which.name_and_keys().0).is_some() {
                // Loads (replays) the coordinator's state in the background.
                broker
                    .attach_internal_topic(which, false)
                    .map_err(|e| Error::DataDir {
                        path: data_dir.clone(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
            }
        }
        Ok(broker)
    }

    /// Makes sure `__consumer_offsets` exists, creating it on first use as
    /// Kafka does (`offsets.topic.num.partitions`, compacted,
    /// `offsets.topic.segment.bytes`, replication factor
    /// `offsets.topic.replication.factor` capped at the live brokers), and
    /// hands its partitions to the group coordinator.
    ///
    /// # Errors
    /// The topic cannot be created.
    pub fn ensure_offsets_topic(&self) -> Result<(), ApiError> {
        if self.groups.is_attached() {
            return Ok(());
        }
        self.ensure_internal_topic(InternalTopic::Offsets)
    }

    /// Makes sure `__transaction_state` exists (`transaction.state.log.*`
    /// keys), as [`Broker::ensure_offsets_topic`] does for groups.
    ///
    /// # Errors
    /// The topic cannot be created.
    pub fn ensure_transaction_topic(&self) -> Result<(), ApiError> {
        if self.txns.is_attached() {
            return Ok(());
        }
        self.ensure_internal_topic(InternalTopic::Transactions)
    }

    fn ensure_internal_topic(&self, which: InternalTopic) -> Result<(), ApiError> {
        let _once = self
            .internal_topics
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let (name, prefix) = which.name_and_keys();
        if self.topics.get(name).is_some() {
            return self.attach_internal_topic(which, false);
        }
        let config = self.config();
        let count = i32::try_from(config.get_i64(&format!("{prefix}.num.partitions")))
            .unwrap_or(50)
            .max(1);
        let replicas =
            i16::try_from(config.get_i64(&format!("{prefix}.replication.factor"))).unwrap_or(1);
        let assignment = self.default_assignment(0, count, replicas);
        let configs = BTreeMap::from([
            ("cleanup.policy".to_owned(), "compact".to_owned()),
            ("compression.type".to_owned(), "producer".to_owned()),
            (
                "segment.bytes".to_owned(),
                config
                    .get_i64(&format!("{prefix}.segment.bytes"))
                    .to_string(),
            ),
        ]);
        match self.create_topic(name, assignment, configs) {
            Ok(_) => self.attach_internal_topic(which, true),
            Err(e) if e.code == ResponseError::TopicAlreadyExists => {
                self.attach_internal_topic(which, false)
            }
            Err(e) => Err(e),
        }
    }

    /// Hands an internal topic's partition logs to its coordinator.
    fn attach_internal_topic(&self, which: InternalTopic, fresh: bool) -> Result<(), ApiError> {
        let (name, _) = which.name_and_keys();
        let meta = self
            .topics
            .get(name)
            .ok_or_else(|| ApiError::code(ResponseError::CoordinatorNotAvailable))?;
        let logs = (0..meta.partition_count())
            .map(|p| self.logs.get(name, p))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| ApiError::code(ResponseError::CoordinatorNotAvailable))?;
        match which {
            InternalTopic::Offsets => self.groups.attach(logs, fresh),
            InternalTopic::Transactions => self.txns.attach(logs, fresh),
        }
        Ok(())
    }

    /// The cluster as of now: id, this node, the registered brokers, the
    /// active controller.
    pub fn cluster(&self) -> ClusterInfo {
        self.membership.info()
    }

    /// This node's id.
    pub fn node_id(&self) -> i32 {
        self.membership.node_id()
    }

    /// Whether this node is a member of a metadata quorum.
    pub fn in_quorum(&self) -> bool {
        self.membership.quorum().is_some()
    }

    /// The metadata quorum, when this node is a member of one.
    pub fn quorum(&self) -> Option<&Arc<cluster::quorum::MetadataQuorum>> {
        self.membership.quorum()
    }

    /// The leadership of `topic`-`partition`: the quorum's in a cluster;
    /// on one node, this node leading in epoch 0 with every replica in sync.
    pub fn partition_state(&self, topic: &str, partition: i32) -> Option<PartitionState> {
        match self.membership.quorum() {
            Some(quorum) => quorum.image().partition(topic, partition).cloned(),
            None => {
                let meta = self.topics.get(topic)?;
                let replicas = meta.partitions.get(usize::try_from(partition).ok()?)?;
                Some(PartitionState::new(replicas))
            }
        }
    }

    /// The leader of `topic`-`partition`.
    pub fn leader_of(&self, topic: &str, partition: i32) -> Option<i32> {
        self.partition_state(topic, partition).map(|s| s.leader)
    }

    /// Starts fetching the partitions this node follows (a cluster only).
    pub fn start_replication(self: &Arc<Self>) {
        if self.in_quorum() {
            let logs: Arc<dyn ReplicaLogs> = self.clone();
            let _ = self.fetchers.set(Fetchers::new(
                self.node_id(),
                logs,
                self.peer_security.clone(),
            ));
            self.sync_topics();
        }
    }

    /// Stops the follower fetchers.
    pub fn stop_replication(&self) {
        if let Some(fetchers) = self.fetchers.get() {
            fetchers.stop();
        }
    }

    /// A follower's fetch of `log` from `fetch_offset` in leader epoch
    /// `epoch`: moves the high watermark, and proposes adding the follower
    /// back to the ISR once it caught up.
    ///
    /// # Errors
    /// NOT_LEADER_OR_FOLLOWER, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH.
    pub fn follower_fetch(
        &self,
        log: &log::PartitionLog,
        replica: i32,
        fetch_offset: i64,
        epoch: i32,
    ) -> Result<(), ResponseError> {
        if let Some(change) = self
            .replicas
            .follower_fetch(log, replica, fetch_offset, epoch)?
        {
            self.propose_isr(change);
        }
        Ok(())
    }

    /// Proposes shrinking the ISR of every partition with a follower
    /// `replica.lag.time.max.ms` behind.
    pub fn check_isr(&self) {
        for change in self.replicas.lagging() {
            self.propose_isr(change);
        }
    }

    fn propose_isr(&self, change: IsrChange) {
        let (Some(quorum), Ok(runtime)) = (
            self.membership.quorum().cloned(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        tracing::info!(topic = %change.topic, partition = change.partition, isr = ?change.isr, "proposing an ISR change");
        let (topic, partition) = (change.topic.clone(), change.partition);
        let command = MetadataCommand::AlterIsr {
            topic: change.topic,
            partition: change.partition,
            leader_epoch: change.leader_epoch,
            partition_epoch: Some(change.partition_epoch),
            isr: change.isr,
        };
        let replicas = self.replicas.clone();
        runtime.spawn(async move {
            let applied = matches!(quorum.propose(command).await, Ok(r) if r.refused.is_none());
            if !applied {
                replicas.change_failed(&topic, partition);
            }
        });
    }

    /// The traffic counters.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.metrics
    }

    /// The current settings (a snapshot: later dynamic changes do not show in it).
    pub fn config(&self) -> Arc<BrokerConfig> {
        self.config.borrow().clone()
    }

    /// A receiver that sees every new config snapshot.
    pub fn watch_config(&self) -> tokio::sync::watch::Receiver<Arc<BrokerConfig>> {
        self.config.subscribe()
    }

    /// Changes one dynamic broker config layer with `change`, which
    /// validates what it sets; unless `validate_only`, the new layer is
    /// stored, becomes the current config, and every topic's log settings
    /// are recomputed (a `log.*` key may be a topic default).
    ///
    /// # Errors
    /// The error `change` returns, or UNKNOWN_SERVER_ERROR if not stored.
    pub fn update_broker_configs(
        &self,
        scope: DynamicScope,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        if self.in_quorum() {
            return self.propose_broker_configs(scope, validate_only, change);
        }
        let _change = self.lock_topic_changes();
        let current = self.config();
        let mut values = current.dynamic(scope).clone();
        change(&mut values)?;
        if validate_only {
            return Ok(());
        }
        self.set_dynamic_configs(scope, values)
    }

    /// In a cluster, dynamic broker configs live in the quorum's image
    /// (every broker's defaults, and each broker's own): the change is
    /// proposed there and reaches every node through `sync_topics`. A
    /// change computed from configs another alter changed meanwhile is
    /// computed again.
    fn propose_broker_configs(
        &self,
        scope: DynamicScope,
        validate_only: bool,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        let node = match scope {
            DynamicScope::ClusterDefault => None,
            DynamicScope::Broker => Some(self.node_id()),
        };
        let _change = self
            .broker_config_changes
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let previous = self.config().dynamic(scope).clone();
        let mut values = previous.clone();
        change(&mut values)?;
        if validate_only {
            return Ok(());
        }
        self.propose(MetadataCommand::SetBrokerConfigs {
            node,
            previous,
            configs: values,
        })
        .map_err(|e| {
            if e.code == ResponseError::InvalidPartitions {
                // Another node's alter of the same configs came first.
                ApiError::new(
                    ResponseError::InvalidRequest,
                    "The broker configs changed meanwhile; retry",
                )
            } else {
                e
            }
        })
    }

    /// Makes `values` the dynamic configs of `scope`: stored, the current
    /// config, and every topic's log settings recomputed (a `log.*` key
    /// may be a topic default).
    fn set_dynamic_configs(
        &self,
        scope: DynamicScope,
        values: BTreeMap<String, String>,
    ) -> Result<(), ApiError> {
        self.dynamic_configs.replace(scope, &values)?;
        tracing::info!(?scope, keys = ?values.keys().collect::<Vec<_>>(), "altered broker configs");
        let current = self.config();
        self.config
            .send_replace(Arc::new(current.with_dynamic(scope, values)));
        for meta in self.topics.all() {
            self.logs
                .set_config(&meta.name, &self.log_config(&meta.configs));
        }
        Ok(())
    }

    /// The log settings of a topic with `overrides`, over the broker defaults.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let config = self.config();
        let value = |key: &str| config.topic_value(overrides, key);
        let number =
            |key: &str, default: i64| value(key).and_then(|v| v.parse().ok()).unwrap_or(default);
        let defaults = LogConfig::default();
        let policy: Vec<String> = value("cleanup.policy")
            .unwrap_or_else(|| "delete".into())
            .split(',')
            .map(|p| p.trim().to_owned())
            .collect();
        LogConfig {
            segment_bytes: u64::try_from(number("segment.bytes", 1 << 30))
                .unwrap_or(defaults.segment_bytes),
            segment_ms: number("segment.ms", defaults.segment_ms),
            retention_ms: number("retention.ms", defaults.retention_ms),
            retention_bytes: number("retention.bytes", defaults.retention_bytes),
            max_message_bytes: usize::try_from(number("max.message.bytes", 1_048_588))
                .unwrap_or(defaults.max_message_bytes),
            log_append_time: value("message.timestamp.type").as_deref() == Some("LogAppendTime"),
            flush_messages: number("flush.messages", defaults.flush_messages),
            flush_ms: number("flush.ms", defaults.flush_ms),
            timestamp_before_max_ms: number(
                "message.timestamp.before.max.ms",
                defaults.timestamp_before_max_ms,
            ),
            timestamp_after_max_ms: number(
                "message.timestamp.after.max.ms",
                defaults.timestamp_after_max_ms,
            ),
            min_insync_replicas: number("min.insync.replicas", defaults.min_insync_replicas),
            producer_id_expiration_ms: config.get_i64("producer.id.expiration.ms"),
            compact: policy.iter().any(|p| p == "compact"),
            delete: policy.iter().any(|p| p == "delete"),
            delete_retention_ms: number("delete.retention.ms", defaults.delete_retention_ms),
            min_cleanable_dirty_ratio: value("min.cleanable.dirty.ratio")
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.min_cleanable_dirty_ratio),
            min_compaction_lag_ms: number("min.compaction.lag.ms", defaults.min_compaction_lag_ms),
            max_compaction_lag_ms: number("max.compaction.lag.ms", defaults.max_compaction_lag_ms),
        }
    }

    /// A new producer id, never handed out before (ids come from blocks
    /// reserved durably in the metadata store).
    ///
    /// # Errors
    /// The next block cannot be reserved.
    pub fn next_producer_id(&self) -> Result<i64, String> {
        self.producer_ids.next_id()
    }

    /// Creates a topic: registry entry first (the atomic existence check),
    /// then its partition directories. Validation is the caller's job.
    ///
    /// # Errors
    /// TOPIC_ALREADY_EXISTS, or KAFKA_STORAGE_ERROR if the directories fail.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: Vec<Vec<i32>>,
        configs: BTreeMap<String, String>,
    ) -> Result<Arc<TopicMeta>, ApiError> {
        let meta = TopicMeta {
            name: name.to_owned(),
            id: uuid::Uuid::new_v4(),
            partitions,
            configs,
        };
        if self.in_quorum() {
            self.topics.check_new_name(name)?;
            self.propose(MetadataCommand::CreateTopic(meta))?;
            return self.topics.get(name).ok_or_else(|| {
                ApiError::new(ResponseError::UnknownServerError, "created, then gone")
            });
        }
        let _change = self.lock_topic_changes();
        let meta = self.topics.create(meta)?;
        let config = self.log_config(&meta.configs);
        if let Err(e) =
            self.logs
                .open_partitions(name, 0, meta.partition_count(), &config, log::now_ms())
        {
            // Undo the registry entry so the name can be retried; the
            // storage error is what the client needs to hear.
            let _ = self.topics.delete(name);
            return Err(storage_error(name, &e));
        }
        tracing::info!(
            topic = name,
            id = %meta.id,
            partitions = meta.partition_count(),
            "created topic"
        );
        Ok(meta)
    }

    /// Creates `name` with the broker defaults (`num.partitions`,
    /// `default.replication.factor`), as auto-creation on Metadata and Produce does.
    ///
    /// # Errors
    /// As [`Broker::create_topic`]; a concurrent creation of the same name wins.
    pub fn auto_create_topic(&self, name: &str) -> Result<Arc<TopicMeta>, ApiError> {
        let config = self.config();
        let count = i32::try_from(config.get_i64("num.partitions")).unwrap_or(1);
        let replicas = i16::try_from(config.get_i64("default.replication.factor")).unwrap_or(1);
        let assignment = self.default_assignment(0, count, replicas);
        match self.create_topic(name, assignment, BTreeMap::new()) {
            Err(e) if e.code == ResponseError::TopicAlreadyExists => self.topics.get(name).ok_or(e),
            other => other,
        }
    }

    /// Grows `name` to `new_count` partitions with the given (already
    /// validated) replica assignments for the new ones, or the default ones.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, INVALID_PARTITIONS (not a growth), or
    /// KAFKA_STORAGE_ERROR.
    pub fn add_partitions(
        &self,
        name: &str,
        new_count: i32,
        assignments: Option<Vec<Vec<i32>>>,
    ) -> Result<Arc<TopicMeta>, ApiError> {
        if self.in_quorum() {
            let meta = self.topics.get(name).ok_or_else(unknown_topic)?;
            let old_count = meta.partition_count();
            check_partition_growth(old_count, new_count)?;
            let added = assignments.unwrap_or_else(|| {
                self.default_assignment(old_count, new_count, meta.replication_factor())
            });
            self.propose(MetadataCommand::AddPartitions {
                name: name.to_owned(),
                from: meta.partitions.len(),
                assignments: added,
            })?;
            return self.topics.get(name).ok_or_else(unknown_topic);
        }
        let _change = self.lock_topic_changes();
        let mut old_count = 0;
        let meta = self.topics.update(name, |meta| {
            old_count = meta.partition_count();
            check_partition_growth(old_count, new_count)?;
            let added = assignments.unwrap_or_else(|| {
                self.default_assignment(old_count, new_count, meta.replication_factor())
            });
            meta.partitions.extend(added);
            Ok(())
        })?;
        self.logs
            .open_partitions(
                name,
                old_count,
                new_count,
                &self.log_config(&meta.configs),
                log::now_ms(),
            )
            .map_err(|e| storage_error(name, &e))?;
        tracing::info!(
            topic = name,
            from = old_count,
            to = new_count,
            "added partitions"
        );
        Ok(meta)
    }

    /// Changes a topic's config overrides with `change`, which validates
    /// what it sets; the change runs under the registry's writer lock, so
    /// concurrent alters never lose each other's keys.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, the error `change` returns, or
    /// UNKNOWN_SERVER_ERROR if not stored.
    pub fn update_topic_configs(
        &self,
        name: &str,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        if self.in_quorum() {
            let mut configs = self
                .topics
                .get(name)
                .ok_or_else(unknown_topic)?
                .configs
                .clone();
            change(&mut configs)?;
            self.propose(MetadataCommand::SetTopicConfigs {
                name: name.to_owned(),
                configs,
            })?;
            return Ok(());
        }
        let _change = self.lock_topic_changes();
        let meta = self.topics.update(name, |meta| change(&mut meta.configs))?;
        self.logs.set_config(name, &self.log_config(&meta.configs));
        tracing::info!(topic = name, "altered topic configs");
        Ok(())
    }

    /// Deletes a topic and all its data on disk.
    ///
    /// # Errors
    /// UNKNOWN_TOPIC_OR_PARTITION, or KAFKA_STORAGE_ERROR if data cannot be removed.
    pub fn delete_topic(&self, name: &str) -> Result<Arc<TopicMeta>, ApiError> {
        if self.in_quorum() {
            let meta = self.topics.get(name).ok_or_else(unknown_topic)?;
            self.propose(MetadataCommand::DeleteTopic {
                name: name.to_owned(),
            })?;
            return Ok(meta);
        }
        let _change = self.lock_topic_changes();
        let meta = self.topics.delete(name)?;
        self.logs
            .delete_topic(name, meta.partition_count())
            .map_err(|e| storage_error(name, &e))?;
        self.groups.remove_topic(name);
        tracing::info!(topic = name, id = %meta.id, "deleted topic");
        Ok(meta)
    }

    /// Appends `command` to the metadata log and brings this node's topics
    /// in line with the result before returning (read your writes).
    ///
    /// # Errors
    /// Kafka's error for a refused command; REQUEST_TIMED_OUT when the
    /// quorum has no leader; UNKNOWN_SERVER_ERROR when it failed.
    fn propose(&self, command: MetadataCommand) -> Result<(), ApiError> {
        if !self.in_quorum() {
            return Ok(());
        }
        match self.propose_command(command)?.refused {
            None => Ok(()),
            Some(Refusal::TopicExists) => Err(ApiError::code(ResponseError::TopicAlreadyExists)),
            Some(Refusal::UnknownTopic) => Err(unknown_topic()),
            Some(_) => Err(ApiError::new(
                ResponseError::InvalidPartitions,
                "The topic's partitions changed meanwhile; retry",
            )),
        }
    }

    /// Appends `command` to the metadata log and brings this node's topics
    /// in line with the result; what applying it did (a refused command
    /// says why). Answers once the other live members applied it too
    /// (`MetadataQuorum::propose_everywhere`): a client that created a
    /// topic through one node finds it on every other.
    ///
    /// # Errors
    /// NOT_CONTROLLER on a single node; REQUEST_TIMED_OUT when the quorum
    /// has no leader; UNKNOWN_SERVER_ERROR when it failed.
    pub fn propose_command(&self, command: MetadataCommand) -> Result<MetadataResult, ApiError> {
        let Some(quorum) = self.membership.quorum() else {
            return Err(ApiError::code(ResponseError::NotController));
        };
        let quorum = quorum.clone();
        let outcome = wait_for(async move { quorum.propose_everywhere(command).await });
        let result = match outcome {
            Ok(result) => result,
            Err(ProposeError::NotLeader { .. }) => {
                return Err(ApiError::new(
                    ResponseError::RequestTimedOut,
                    "The metadata quorum has no leader",
                ))
            }
            Err(e) => {
                return Err(ApiError::new(
                    ResponseError::UnknownServerError,
                    e.to_string(),
                ))
            }
        };
        self.sync_topics();
        Ok(result)
    }

    /// Brings this node's topic registry and partition logs in line with
    /// the quorum's image: topics created, grown, re-configured or deleted
    /// elsewhere (or while this node was down). Idempotent; run after
    /// every proposal and whenever the image changes. Every node keeps a
    /// log for every partition (until replication lands, only the
    /// leader's holds data), so the coordinators find all of theirs.
    pub fn sync_topics(&self) {
        let Some(quorum) = self.membership.quorum() else {
            return;
        };
        let image = quorum.image();
        let _change = self.lock_topic_changes();
        self.apply_image(&image);
        let follow = self.replicas.apply(&image, &self.logs);
        if let Some(fetchers) = self.fetchers.get() {
            let addresses = image
                .brokers
                .values()
                .map(|b| (b.node_id, format!("{}:{}", b.host, b.port)))
                .collect();
            fetchers.update(follow, &addresses);
        }
    }

    fn apply_image(&self, image: &MetadataImage) {
        let now = log::now_ms();
        let none = BTreeMap::new();
        for (scope, wanted) in [
            (DynamicScope::ClusterDefault, &image.cluster_configs),
            (
                DynamicScope::Broker,
                image.node_configs.get(&self.node_id()).unwrap_or(&none),
            ),
        ] {
            if self.config().dynamic(scope) != wanted {
                if let Err(e) = self.set_dynamic_configs(scope, wanted.clone()) {
                    tracing::error!(?scope, cause = ?e, "cannot apply the quorum's broker configs");
                }
            }
        }
        for local in self.topics.all() {
            let kept = image
                .topics
                .get(&local.name)
                .is_some_and(|wanted| wanted.id == local.id);
            if !kept {
                if let Err(e) = self.remove_topic_locally(&local.name) {
                    tracing::error!(topic = %local.name, cause = ?e, "cannot delete a topic the quorum deleted");
                }
            }
        }
        for wanted in image.topics.values() {
            let local = self.topics.get(&wanted.name);
            if local.as_deref() == Some(wanted) {
                continue;
            }
            let from = local.as_ref().map_or(0, |m| m.partition_count());
            let stored = match local {
                None => self.topics.create(wanted.clone()),
                Some(_) => self.topics.update(&wanted.name, |m| {
                    *m = wanted.clone();
                    Ok(())
                }),
            };
            let meta = match stored {
                Ok(meta) => meta,
                Err(e) => {
                    tracing::error!(topic = %wanted.name, cause = ?e, "cannot store a topic of the quorum");
                    continue;
                }
            };
            let config = self.log_config(&meta.configs);
            if let Err(e) =
                self.logs
                    .open_partitions(&meta.name, from, meta.partition_count(), &config, now)
            {
                tracing::error!(topic = %meta.name, cause = %e, "cannot open the partitions of a topic of the quorum");
            }
            self.logs.set_config(&meta.name, &config);
            tracing::info!(topic = %meta.name, partitions = meta.partition_count(), "topic from the metadata quorum");
        }
        for which in [InternalTopic::Offsets, InternalTopic::Transactions] {
            let name = which.name_and_keys().0;
            let Some(meta) = image.topics.get(name) else {
                continue;
            };
            let _ = self.attach_internal_topic(which, false);
            for partition in 0..meta.partition_count() {
                let led =
                    image.partition(name, partition).map(|s| s.leader) == Some(self.node_id());
                match which {
                    InternalTopic::Offsets => self.groups.set_led(partition, led),
                    InternalTopic::Transactions => self.txns.set_led(partition, led),
                }
            }
        }
    }

    fn remove_topic_locally(&self, name: &str) -> Result<(), ApiError> {
        let meta = self.topics.delete(name)?;
        self.logs
            .delete_topic(name, meta.partition_count())
            .map_err(|e| storage_error(name, &e))?;
        self.groups.remove_topic(name);
        tracing::info!(topic = name, "topic deleted by the metadata quorum");
        Ok(())
    }

    fn lock_topic_changes(&self) -> std::sync::MutexGuard<'_, ()> {
        // Guards no data of its own, so a poisoned lock is still usable.
        self.topic_changes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replica lists for partitions `from..to`: `replicas` live brokers
    /// each, leaders round-robin, spread over racks when the brokers have
    /// them (`cluster::placement`).
    pub fn default_assignment(&self, from: i32, to: i32, replicas: i16) -> Vec<Vec<i32>> {
        let brokers: Vec<(i32, Option<String>)> = self
            .cluster()
            .brokers
            .into_iter()
            .map(|b| (b.node_id, b.rack))
            .collect();
        cluster::placement::assign(&brokers, from, to, replicas)
    }

    /// One pass of background upkeep: retention and time-based flushing.
    pub fn maintain(&self) {
        let now = log::now_ms();
        self.logs.maintain(now);
        self.groups.expire_offsets(now);
        self.txns.tick(self);
    }

    /// One log cleaner pass under the current `log.cleaner.*` settings;
    /// whether a log was cleaned. `stop` is polled between batches.
    pub fn clean_logs(&self, stop: &dyn Fn() -> bool) -> bool {
        let config = self.config();
        let cleaner = log::CleanerConfig {
            dedupe_buffer_size: u64::try_from(config.get_i64("log.cleaner.dedupe.buffer.size"))
                .unwrap_or(0),
            io_max_bytes_per_second: config
                .get("log.cleaner.io.max.bytes.per.second")
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::MAX),
        };
        self.logs.clean_one(log::now_ms(), &cleaner, stop)
    }

    /// Flushes every log and the metadata store to disk (on shutdown).
    ///
    /// # Errors
    /// sled cannot write.
    pub fn flush(&self) -> Result<()> {
        self.logs.flush_all(log::now_ms());
        self.db.flush()?;
        Ok(())
    }
}

impl ReplicaLogs for Broker {
    fn replica_log(&self, topic: &str, partition: i32) -> Option<Arc<log::PartitionLog>> {
        self.logs.get(topic, partition)
    }

    fn follows(&self, topic: &str, partition: i32, epoch: i32) -> bool {
        self.replicas.follows(topic, partition, epoch)
    }
}

/// The coordinators' internal topics.
#[derive(Debug, Clone, Copy)]
enum InternalTopic {
    Offsets,
    Transactions,
}

impl InternalTopic {
    /// The topic's name and the prefix of its broker config keys.
    fn name_and_keys(self) -> (&'static str, &'static str) {
        match self {
            Self::Offsets => (OFFSETS_TOPIC, "offsets.topic"),
            Self::Transactions => (TXN_TOPIC, "transaction.state.log"),
        }
    }
}

/// The most records one admin operation may produce in Kafka's KRaft
/// controller (`MAX_RECORDS_PER_USER_OP`); one per new partition.
const MAX_RECORDS_PER_USER_OP: i64 = 10_000;

/// Refuses creating `added` partitions in one request when Kafka's
/// controller would: more than [`MAX_RECORDS_PER_USER_OP`].
///
/// # Errors
/// POLICY_VIOLATION, with Kafka's message.
pub fn check_partitions_per_request(added: i64) -> Result<(), ApiError> {
    if added > MAX_RECORDS_PER_USER_OP {
        return Err(ApiError::new(
            ResponseError::PolicyViolation,
            "Unable to perform excessively large batch operation.",
        ));
    }
    Ok(())
}

/// Checks that a partition count change is a growth of a size one request
/// may make, with Kafka's messages.
///
/// # Errors
/// INVALID_PARTITIONS, or POLICY_VIOLATION (see [`check_partitions_per_request`]).
pub fn check_partition_growth(current: i32, requested: i32) -> Result<(), ApiError> {
    if requested == current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {current} partitions."),
        ));
    }
    if requested < current {
        return Err(ApiError::new(
            ResponseError::InvalidPartitions,
            format!(
                "Topic currently has {current} partitions, which is higher than the requested {requested}."
            ),
        ));
    }
    check_partitions_per_request(i64::from(requested) - i64::from(current))
}

/// Runs `future` to completion from synchronous handler code, moving this
/// worker's other tasks to another thread meanwhile.
fn wait_for<T>(future: impl std::future::Future<Output = T>) -> T {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(future))
}

fn unknown_topic() -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        "This server does not host this topic-partition.",
    )
}

fn storage_error(topic: &str, e: &std::io::Error) -> ApiError {
    tracing::error!(topic, cause = %e, "log directory operation failed");
    ApiError::new(ResponseError::KafkaStorageError, e.to_string())
}

/// Checks that `dir` exists (creating it) and takes a file.
///
/// # Errors
/// It cannot be created or written.
pub(crate) fn check_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(".write-check");
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}
