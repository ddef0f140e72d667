//! librdkafka, through the rdkafka crate, against a strom broker started
//! in-process on a free loopback port. Each test has its own broker and
//! data dir, so tests run in parallel.

mod admin;
mod compaction;
mod embedded;
mod groups;
mod log;
mod support;
mod transactions;
