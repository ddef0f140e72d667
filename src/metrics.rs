//! Counters the broker keeps as it serves: per-topic messages and bytes
//! in and out, requests and their latency per API, open connections per
//! listener. Lock-free on the hot path (atomics; a topic's counters are
//! created once, under a write lock). Gauges read from the broker's state
//! at scrape time (log sizes, offsets, group lag, partition health) are
//! not kept here: `server::metrics` reads them when `/metrics` is asked.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds (ms) of the request latency histogram's buckets.
pub const LATENCY_BUCKETS_MS: [f64; 14] = [
    0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
];

/// API keys counted (Kafka's keys are below this).
const API_KEYS: usize = 128;

/// One topic's traffic.
#[derive(Debug, Default)]
pub struct TopicCounters {
    /// Records appended by producers.
    pub messages_in: AtomicU64,
    /// Record bytes appended by producers.
    pub bytes_in: AtomicU64,
    /// Record bytes returned to consumers (not to follower replicas).
    pub bytes_out: AtomicU64,
}

/// One API's requests.
#[derive(Debug, Default)]
pub struct RequestCounters {
    /// Requests answered.
    pub count: AtomicU64,
    /// Their total time, in µs.
    pub total_us: AtomicU64,
    /// Requests per latency bucket (not cumulative; `LATENCY_BUCKETS_MS`,
    /// then one for larger).
    pub buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
}

/// The broker's counters.
#[derive(Debug)]
pub struct Metrics {
    topics: RwLock<BTreeMap<String, Arc<TopicCounters>>>,
    requests: Box<[RequestCounters]>,
    connections: RwLock<BTreeMap<Arc<str>, Arc<AtomicI64>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            topics: RwLock::default(),
            requests: (0..API_KEYS).map(|_| RequestCounters::default()).collect(),
            connections: RwLock::default(),
        }
    }
}

impl Metrics {
    fn topic(&self, topic: &str) -> Arc<TopicCounters> {
        shared(&self.topics, topic, || topic.to_owned())
    }

    /// A producer's batch of `messages` records, `bytes` long, appended to `topic`.
    pub fn record_produce(&self, topic: &str, messages: u64, bytes: u64) {
        let counters = self.topic(topic);
        counters.messages_in.fetch_add(messages, Ordering::Relaxed);
        counters.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `bytes` of `topic`'s records returned to a consumer.
    pub fn record_fetch(&self, topic: &str, bytes: u64) {
        if bytes > 0 {
            self.topic(topic)
                .bytes_out
                .fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// A request of `api_key` answered after `elapsed`.
    pub fn record_request(&self, api_key: i16, elapsed: Duration) {
        let Some(counters) = usize::try_from(api_key)
            .ok()
            .and_then(|k| self.requests.get(k))
        else {
            return;
        };
        counters.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        counters.total_us.fetch_add(micros, Ordering::Relaxed);
        let ms = elapsed.as_secs_f64() * 1000.0;
        let bucket = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        counters.buckets[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection opened on `listener`; counted until the guard drops.
    pub fn connection_opened(&self, listener: &Arc<str>) -> ConnectionGuard {
        let gauge = shared(&self.connections, listener, || listener.clone());
        gauge.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(gauge)
    }

    /// Every topic's counters, by name.
    pub fn topics(&self) -> Vec<(String, Arc<TopicCounters>)> {
        self.topics
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, c)| (name.clone(), c.clone()))
            .collect()
    }

    /// Forgets a deleted topic's counters.
    pub fn forget_topic(&self, topic: &str) {
        self.topics
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(topic);
    }

    /// The counters of every API key that has served a request.
    pub fn requests(&self) -> Vec<(i16, &RequestCounters)> {
        (0i16..)
            .zip(self.requests.iter())
            .filter(|(_, c)| c.count.load(Ordering::Relaxed) > 0)
            .collect()
    }

    /// Open connections per listener.
    pub fn connections(&self) -> Vec<(Arc<str>, i64)> {
        self.connections
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, gauge)| (name.clone(), gauge.load(Ordering::Relaxed)))
            .collect()
    }
}

/// The entry of `map` under `key`, made (with the key `owned()`) on first
/// use: a read lock on the way every later call takes.
fn shared<K, V>(map: &RwLock<BTreeMap<K, Arc<V>>>, key: &str, owned: impl FnOnce() -> K) -> Arc<V>
where
    K: Ord + std::borrow::Borrow<str>,
    V: Default,
{
    if let Some(value) = map.read().unwrap_or_else(|e| e.into_inner()).get(key) {
        return value.clone();
    }
    map.write()
        .unwrap_or_else(|e| e.into_inner())
        .entry(owned())
        .or_default()
        .clone()
}

/// Holds one connection in its listener's count.
#[derive(Debug)]
pub struct ConnectionGuard(Arc<AtomicI64>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up() {
        let metrics = Metrics::default();
        metrics.record_produce("orders", 3, 300);
        metrics.record_produce("orders", 2, 200);
        metrics.record_fetch("orders", 120);
        metrics.record_request(0, Duration::from_micros(700));
        metrics.record_request(0, Duration::from_secs(20));
        let listener: Arc<str> = "PLAINTEXT".into();
        let guard = metrics.connection_opened(&listener);
        assert_eq!(metrics.connections(), [(listener.clone(), 1)]);
        drop(guard);
        assert_eq!(metrics.connections(), [(listener, 0)]);
        let topics = metrics.topics();
        assert_eq!(topics[0].1.messages_in.load(Ordering::Relaxed), 5);
        assert_eq!(topics[0].1.bytes_in.load(Ordering::Relaxed), 500);
        assert_eq!(topics[0].1.bytes_out.load(Ordering::Relaxed), 120);
        let requests = metrics.requests();
        assert_eq!(requests.len(), 1);
        let produce = requests[0].1;
        assert_eq!(produce.count.load(Ordering::Relaxed), 2);
        assert_eq!(
            produce.buckets[1].load(Ordering::Relaxed),
            1,
            "0.7 ms ≤ 1 ms"
        );
        assert_eq!(
            produce.buckets[LATENCY_BUCKETS_MS.len()].load(Ordering::Relaxed),
            1
        );
        metrics.record_request(-1, Duration::ZERO);
        metrics.record_request(500, Duration::ZERO);
    }
}
