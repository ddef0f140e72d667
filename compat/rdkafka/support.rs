//! Shared set-up: a broker on 127.0.0.1:0 with a temporary data dir, and
//! rdkafka clients pointed at it.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;
use strom::{BrokerConfig, RunningBroker};

/// How long any single client call may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A running broker and the directory it keeps its data in.
pub struct TestBroker {
    pub running: RunningBroker,
    pub dir: tempfile::TempDir,
}

impl TestBroker {
    /// Starts a broker with `settings` (Kafka key, value) on a free port.
    pub async fn start(settings: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir, settings).await
    }

    /// Starts a broker on an existing data dir (for restart tests).
    pub async fn start_in(dir: tempfile::TempDir, settings: &[(&str, &str)]) -> Self {
        let mut config = BrokerConfig::new();
        config
            .set("listeners", "PLAINTEXT://127.0.0.1:0", "test")
            .expect("listeners");
        config
            .set("log.dirs", dir.path().to_str().expect("utf-8 path"), "test")
            .expect("log.dirs");
        for (key, value) in settings {
            config.set(key, value, "test").expect("setting");
        }
        let running = RunningBroker::start(config).await.expect("broker starts");
        Self { running, dir }
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn bootstrap(&self) -> String {
        self.running.local_addr().to_string()
    }

    /// Stops the broker and hands back its data dir.
    pub async fn stop(self) -> tempfile::TempDir {
        self.running.shutdown().await.expect("clean shutdown");
        self.dir
    }

    /// An rdkafka client config pointed at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.bootstrap())
            .set("socket.timeout.ms", "10000");
        config
    }

    /// An admin client pointed at this broker.
    pub fn admin(&self) -> AdminClient<DefaultClientContext> {
        self.client_config().create().expect("admin client")
    }
}

/// Admin options with the test deadline.
pub fn options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(DEADLINE))
}
