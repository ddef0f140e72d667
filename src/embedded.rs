//! A broker inside the test process: strom as a dev-dependency.
//!
//! ```no_run
//! let broker = strom::EmbeddedBroker::start().expect("broker");
//! // Point any Kafka client at it:
//! let bootstrap: &str = broker.bootstrap_servers();
//! # let _ = bootstrap;
//! // The broker stops, and its data dir is removed, when `broker` drops.
//! ```
//!
//! It listens on a free loopback port, keeps its data in a fresh
//! temporary directory, and runs on a thread and runtime of its own, so
//! it works the same from plain `#[test]`s and from `#[tokio::test]`s.
//! Settings take Kafka's names: `EmbeddedBroker::builder().set("num.partitions", "3").start()`.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::{BrokerConfig, Error, Result, RunningBroker};

/// Settings of an [`EmbeddedBroker`] before it starts.
#[derive(Debug, Default)]
pub struct EmbeddedBrokerBuilder {
    settings: Vec<(String, String)>,
}

impl EmbeddedBrokerBuilder {
    /// Sets a broker config by its Kafka name (`num.partitions`,
    /// `auto.create.topics.enable`, `log.retention.ms`, ...).
    #[must_use]
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.settings.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Starts the broker and waits until it serves.
    ///
    /// # Errors
    /// A setting is unknown or invalid, or the broker cannot start.
    pub fn start(self) -> Result<EmbeddedBroker> {
        let dir = temp_dir()?;
        let mut config = BrokerConfig::new();
        config.set("listeners", "PLAINTEXT://127.0.0.1:0", "embedded broker")?;
        config.set("log.dirs", &dir.display().to_string(), "embedded broker")?;
        config.set("group.initial.rebalance.delay.ms", "0", "embedded broker")?;
        for (key, value) in &self.settings {
            if let Err(e) = config.set(key, value, "EmbeddedBrokerBuilder::set") {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e.into());
            }
        }
        let (started_tx, started_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("strom-embedded".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(Error::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let broker = match RunningBroker::start(config).await {
                        Ok(broker) => broker,
                        Err(e) => {
                            let _ = started_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = started_tx.send(Ok(broker.local_addr()));
                    let _ = stop_rx.await;
                    if let Err(e) = broker.shutdown().await {
                        tracing::warn!(cause = %e, "embedded broker did not stop cleanly");
                    }
                });
            })
            .map_err(Error::Runtime)?;
        let address = match started_rx.recv() {
            Ok(Ok(address)) => address,
            Ok(Err(e)) => {
                let _ = thread.join();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
            Err(_) => {
                let _ = thread.join();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(Error::Runtime(std::io::Error::other(
                    "the embedded broker's thread ended before it started",
                )));
            }
        };
        Ok(EmbeddedBroker {
            bootstrap: address.to_string(),
            dir,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

/// A running in-process broker; stops when dropped.
#[derive(Debug)]
pub struct EmbeddedBroker {
    bootstrap: String,
    dir: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedBroker {
    /// A broker with Kafka's defaults (and no initial rebalance delay).
    ///
    /// # Errors
    /// As [`EmbeddedBrokerBuilder::start`].
    pub fn start() -> Result<Self> {
        Self::builder().start()
    }

    /// Settings before the start.
    pub fn builder() -> EmbeddedBrokerBuilder {
        EmbeddedBrokerBuilder::default()
    }

    /// The `bootstrap.servers` value for clients (`127.0.0.1:PORT`).
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// The broker's data directory (removed when it stops).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh directory under the system's temp dir.
fn temp_dir() -> Result<PathBuf> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("strom-embedded-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(Error::DataDir { path: dir, source }),
        }
    }
}
