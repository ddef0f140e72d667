//! strom: a broker that speaks Apache Kafka's wire protocol, so stock Kafka
//! clients work against it by changing only `bootstrap.servers`.
//!
//! Layers, top to bottom (data flows down, never back up):
//! - [`server`]: TCP listener, one task per connection, length-prefixed frames.
//! - [`protocol`]: bytes to typed requests and typed responses to bytes; the
//!   table of supported API versions. No I/O.
//! - [`api`]: one handler per Kafka API, plain functions over [`Broker`].
//! - [`group`]: consumer groups and committed offsets, kept as records in
//!   `__consumer_offsets` through [`coordinator`].
//! - [`txn`]: the transaction coordinator, its state as records in
//!   `__transaction_state`.
//! - [`cluster`], [`log`]: topic metadata, partition data on disk.
//!
//! [`config`] holds every setting under Kafka's names; [`Broker`] is the
//! shared state the handlers work on.

pub mod api;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod coordinator;
pub mod embedded;
pub mod error;
pub mod group;
pub mod log;
pub mod metrics;
pub mod protocol;
pub mod replica;
pub mod security;
pub mod server;
pub mod store;
pub mod txn;
pub mod varint;

pub use broker::Broker;
pub use config::BrokerConfig;
pub use embedded::{EmbeddedBroker, EmbeddedBrokerBuilder};
pub use error::{ApiError, Error, Result};
pub use server::RunningBroker;
