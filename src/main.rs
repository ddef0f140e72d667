//! The `strom` binary: parse flags into a [`BrokerConfig`], start the
//! broker, stop it cleanly on SIGINT or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use strom::config::split_assignment;
use strom::{BrokerConfig, RunningBroker};

/// A Kafka-compatible broker. Point any Kafka client at it.
///
/// Every flag can also be set as an environment variable STROM_<NAME>
/// (e.g. STROM_DATA_DIR). Kafka's container variables work too:
/// KAFKA_<KEY> (apache/kafka, Confluent: KAFKA_ADVERTISED_LISTENERS) or
/// KAFKA_CFG_<KEY> (Bitnami). Precedence, lowest first: Kafka's defaults,
/// --config FILE, KAFKA_* variables, the dedicated flags, --set.
#[derive(Debug, Parser)]
#[command(name = "strom", version, about, long_about = None)]
struct Cli {
    /// Address to listen on [default: 127.0.0.1:9092]
    #[arg(long, env = "STROM_LISTEN", value_name = "ADDR")]
    listen: Option<String>,
    /// Address clients are told to connect to [default: the listen address]
    #[arg(long, env = "STROM_ADVERTISED_LISTENER", value_name = "HOST:PORT")]
    advertised_listener: Option<String>,
    /// Data directory [default: ./data]
    #[arg(long, env = "STROM_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// This broker's node id [default: 1]
    #[arg(long, env = "STROM_NODE_ID", value_name = "N")]
    node_id: Option<u32>,
    /// Partitions of new topics when not given [default: 1]
    #[arg(long, env = "STROM_NUM_PARTITIONS", value_name = "N")]
    num_partitions: Option<u32>,
    /// Create unknown topics on Metadata and Produce [default: true]
    #[arg(long, env = "STROM_AUTO_CREATE_TOPICS", value_name = "BOOL")]
    auto_create_topics: Option<bool>,
    /// A Kafka server.properties-style file (Kafka's key names)
    #[arg(long, env = "STROM_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override one setting by its Kafka name, e.g. --set log.retention.hours=1
    /// (repeatable; the value is taken whole, ';' included; in STROM_SET
    /// separate entries with ';': a piece without '=' belongs to the entry
    /// before it, so super.users=User:a;User:b stays one entry)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Create a SCRAM user at start unless it has a credential of that
    /// mechanism, in kafka-storage.sh format's syntax:
    /// 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (repeatable; in
    /// STROM_ADD_SCRAM separate entries with ';')
    #[arg(
        long = "add-scram",
        env = "STROM_ADD_SCRAM",
        value_name = "SPEC",
        value_delimiter = ';'
    )]
    add_scram: Vec<String>,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive
    #[arg(
        long,
        env = "STROM_LOG_LEVEL",
        default_value = "info",
        value_name = "LEVEL"
    )]
    log_level: String,
    /// Serve Prometheus metrics (/metrics) and a health check (/health)
    /// over HTTP on this address [default: off]
    #[arg(long, env = "STROM_METRICS_LISTEN", value_name = "ADDR")]
    metrics_listen: Option<String>,
    /// Log lines as `text` (for people) or `json` (one object per line,
    /// for log shippers)
    #[arg(
        long,
        env = "STROM_LOG_FORMAT",
        default_value = "text",
        value_name = "FORMAT",
        value_parser = ["text", "json"]
    )]
    log_format: String,
}

impl Cli {
    /// Folds file, flags and overrides into one config, in precedence order.
    fn into_config(self) -> Result<BrokerConfig, strom::Error> {
        let mut config = BrokerConfig::new();
        if let Some(path) = &self.config {
            config.load_file(path)?;
        }
        let environment = std::env::vars_os().filter_map(|(name, value)| {
            Some((name.into_string().ok()?, value.into_string().ok()?))
        });
        for setting in strom::config::container_settings(environment) {
            let origin = format!("environment variable {}", setting.variable);
            match config.set(&setting.key, &setting.value, &origin) {
                Ok(()) => {}
                // Kafka ignores keys it does not know, with a warning.
                Err(strom::config::ConfigError::UnknownKey { .. }) => tracing::warn!(
                    variable = %setting.variable,
                    key = %setting.key,
                    "not a broker setting: ignored"
                ),
                Err(e) => return Err(e.into()),
            }
        }
        let flags = [
            (
                "listeners",
                self.listen.map(|a| format!("PLAINTEXT://{a}")),
                "--listen",
            ),
            (
                "advertised.listeners",
                self.advertised_listener.map(|a| format!("PLAINTEXT://{a}")),
                "--advertised-listener",
            ),
            (
                "log.dirs",
                self.data_dir.map(|d| d.display().to_string()),
                "--data-dir",
            ),
            ("node.id", self.node_id.map(|n| n.to_string()), "--node-id"),
            (
                "num.partitions",
                self.num_partitions.map(|n| n.to_string()),
                "--num-partitions",
            ),
            (
                "auto.create.topics.enable",
                self.auto_create_topics.map(|b| b.to_string()),
                "--auto-create-topics",
            ),
        ];
        for (key, value, origin) in flags {
            if let Some(value) = value {
                config.set(key, &value, origin)?;
            }
        }
        let from_env;
        let entries = if self.set.is_empty() {
            from_env = std::env::var("STROM_SET")
                .map(|v| split_settings(&v))
                .unwrap_or_default();
            &from_env
        } else {
            &self.set
        };
        for entry in entries {
            let (key, value) =
                split_assignment(entry).ok_or_else(|| strom::config::ConfigError::Syntax {
                    origin: format!("--set {entry}"),
                })?;
            config.set(key, value, "--set")?;
        }
        Ok(config)
    }
}

/// `STROM_SET`'s entries: split at ';', a piece without '=' (or empty)
/// joined to the entry before it (values such as `super.users` and JAAS
/// configs hold ';' themselves).
fn split_settings(text: &str) -> Vec<String> {
    let mut entries: Vec<String> = Vec::new();
    for piece in text.split(';') {
        match entries.last_mut() {
            Some(last) if !piece.contains('=') || piece.trim().is_empty() => {
                last.push(';');
                last.push_str(piece);
            }
            _ if piece.trim().is_empty() => {}
            _ => entries.push(piece.to_owned()),
        }
    }
    entries
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // One clear line: clap's first line, without its usage block.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!("strom: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // openraft reports routine Raft events (votes ignored after a term
    // change, a voter that is down) as warnings and errors, every few
    // hundred milliseconds: silent unless asked for (`--log-level
    // info,openraft=warn`); strom logs quorum changes itself.
    let directives = if cli.log_level.contains("openraft") {
        cli.log_level.clone()
    } else {
        format!("{},openraft=off", cli.log_level)
    };
    let filter = match tracing_subscriber::EnvFilter::try_new(&directives) {
        Ok(filter) => filter,
        Err(e) => {
            eprintln!("strom: invalid --log-level '{}': {e}", cli.log_level);
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    if cli.log_format == "json" {
        logs.json()
            .flatten_event(true)
            .with_current_span(false)
            .init();
    } else {
        logs.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .init();
    }
    let mut users = Vec::new();
    for spec in &cli.add_scram {
        match strom::security::scram::InitialUser::parse(spec) {
            Ok(user) => users.push(user),
            Err(e) => {
                eprintln!("strom: --add-scram: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let metrics_listen = cli.metrics_listen.clone();
    let config = match cli.into_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("strom: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("strom: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, users, metrics_listen)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strom: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the broker until SIGINT or SIGTERM. The handlers are installed
/// before the broker starts, so a signal right after the start line is
/// never fatal.
async fn serve(
    config: BrokerConfig,
    users: Vec<strom::security::scram::InitialUser>,
    metrics_listen: Option<String>,
) -> Result<(), strom::Error> {
    use tokio::signal::unix::{signal, SignalKind};
    let watch = |kind: SignalKind, name: &str| match signal(kind) {
        Ok(stream) => Some(stream),
        Err(e) => {
            tracing::warn!(cause = %e, signal = name, "cannot watch this signal");
            None
        }
    };
    let mut interrupt = watch(SignalKind::interrupt(), "SIGINT");
    let mut terminate = watch(SignalKind::terminate(), "SIGTERM");
    let broker = RunningBroker::start(config).await?;
    if let Some(address) = metrics_listen {
        if let Err(e) = broker.serve_metrics(&address).await {
            broker.shutdown().await?;
            return Err(e);
        }
    }
    if !users.is_empty() {
        let running = broker.broker().clone();
        let added = tokio::task::spawn_blocking(move || running.add_initial_users(&users)).await;
        match added {
            Ok(Ok(n)) => tracing::info!(added = n, "SCRAM users from --add-scram"),
            Ok(Err(e)) => tracing::error!(cause = ?e, "cannot create the --add-scram users"),
            Err(e) => tracing::error!(cause = %e, "cannot create the --add-scram users"),
        }
    }
    tokio::select! {
        _ = received(&mut interrupt) => {}
        _ = received(&mut terminate) => {}
    }
    tracing::info!("shutting down");
    broker.shutdown().await
}

/// Resolves when the signal arrives; never, if it is not watched.
async fn received(stream: &mut Option<tokio::signal::unix::Signal>) {
    match stream {
        Some(stream) => {
            stream.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::split_settings;

    #[test]
    fn strom_set_entries_keep_semicolons_inside_values() {
        assert_eq!(
            split_settings(
                "num.partitions=3;super.users=User:a;User:b;x.sasl.jaas.config=M required u=\"p\";"
            ),
            [
                "num.partitions=3",
                "super.users=User:a;User:b",
                "x.sasl.jaas.config=M required u=\"p\";",
            ]
        );
        assert!(split_settings("").is_empty());
    }
}
