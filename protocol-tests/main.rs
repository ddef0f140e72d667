//! strom's byte-level conformance suite: Kafka request frames built with the
//! kafka-protocol crate's encoders (or by hand, when they must be wrong) go
//! to an in-process broker over a real loopback socket, and the response
//! frames are decoded and checked field by field. `golden` replays frames
//! recorded against Apache Kafka 4.1 and compares the answers by shape.
//!
//! Every test binds 127.0.0.1 on an OS-chosen port, and every network step
//! has a deadline (`support::DEADLINE`), so a broken broker fails a test
//! rather than hanging the run.

mod admin;
mod api_versions;
mod broker_configs;
mod create_topics;
mod delete_records;
mod edge_errors;
mod golden;
mod internal_topics;
mod leader_epochs;
mod malformed;
mod metadata;
mod pipelining;
mod produce_rules;
mod security;
mod support;
mod transactions;
mod transactions_v2;
