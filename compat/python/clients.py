"""One adapter per Python Kafka client, all with the same small interface.

The scenarios in test_clients.py are written once against this interface;
each adapter does the work with its library's own public API (confluent-kafka,
kafka-python, aiokafka), so every scenario really runs through every client.

Conventions shared by the adapters:
  * partitions are ints, offsets are ints, "no offset" is None;
  * consumed records come back as `Rec`;
  * admin failures with a Kafka error code raise `AdminError(code)`;
  * config sources are Kafka's names (DYNAMIC_TOPIC_CONFIG, DEFAULT_CONFIG, ...);
  * group states are lower case without separators ("stable", "empty").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import namedtuple

Rec = namedtuple("Rec", "partition offset key value headers timestamp ts_type")

TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC_OR_PARTITION = 3

CONFIG_SOURCES = {
    0: "UNKNOWN_CONFIG",
    1: "DYNAMIC_TOPIC_CONFIG",
    2: "DYNAMIC_BROKER_CONFIG",
    3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG",
    5: "DEFAULT_CONFIG",
    6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    8: "GROUP_CONFIG",
}

# Consumer timings: short enough that rebalances finish in a second or two,
# at the broker's default group.min.session.timeout.ms (6 s).
SESSION_TIMEOUT_MS = 6000
HEARTBEAT_MS = 500


class FencedError(Exception):
    """A transactional producer's operation failed because a newer producer
    with the same transactional.id fenced it; each adapter maps its library's
    own fenced errors (librdkafka's _FENCED, PRODUCER_FENCED,
    INVALID_PRODUCER_EPOCH, ...) to this, the library's error as the cause."""


class AdminError(Exception):
    """An admin request answered with a Kafka error code."""

    def __init__(self, code, message=""):
        super().__init__(f"Kafka error {code}: {message}")
        self.code = code


def norm_state(state):
    if state is None:
        return None
    s = getattr(state, "name", state)
    return str(s).replace("_", "").replace("-", "").lower()


def norm_headers(headers):
    return [(k, v) for k, v in (headers or [])]


def _check_msgs(msgs):
    for m in msgs:
        unknown = set(m) - {"key", "value", "headers", "timestamp", "partition"}
        assert not unknown, unknown


# --------------------------------------------------------------------------
# confluent-kafka (librdkafka)
# --------------------------------------------------------------------------


class ConfluentClient:
    name = "confluent-kafka"
    null_header_values = True

    def __init__(self, bootstrap):
        from confluent_kafka.admin import AdminClient

        self.bootstrap = bootstrap
        self.admin = AdminClient({"bootstrap.servers": bootstrap})
        self._closers = []

    def close(self):
        for c in reversed(self._closers):
            try:
                c()
            except Exception:
                pass
        # Drop the librdkafka handles now: one that outlives its broker keeps
        # logging reconnect failures.
        self._closers.clear()
        self.admin = None

    # ---- admin ----
    @staticmethod
    def _result(fut, timeout=20):
        from confluent_kafka import KafkaException

        try:
            return fut.result(timeout=timeout)
        except KafkaException as e:
            err = e.args[0]
            raise AdminError(err.code(), err.str()) from e

    def create_topic(self, name, partitions, configs=None):
        from confluent_kafka.admin import NewTopic

        fs = self.admin.create_topics(
            [NewTopic(name, num_partitions=partitions, config=configs or {})],
            operation_timeout=15,
        )
        self._result(fs[name])

    def delete_topic(self, name):
        fs = self.admin.delete_topics([name], operation_timeout=15)
        self._result(fs[name])

    def create_partitions(self, name, total):
        from confluent_kafka.admin import NewPartitions

        fs = self.admin.create_partitions([NewPartitions(name, total)], operation_timeout=15)
        self._result(fs[name])

    def list_topics(self):
        return set(self.admin.list_topics(timeout=10).topics)

    def topic_partitions(self, name):
        """{partition: (leader, replicas, isr)} from an all-topics Metadata, or None."""
        t = self.admin.list_topics(timeout=10).topics.get(name)
        if t is None or t.error is not None:
            return None
        return {p.id: (p.leader, list(p.replicas), list(p.isrs)) for p in t.partitions.values()}

    def cluster(self):
        """(cluster_id, controller_id, [(node_id, host, port)]) from DescribeCluster."""
        d = self._result(self.admin.describe_cluster(request_timeout=10))
        return (
            d.cluster_id,
            d.controller.id if d.controller is not None else None,
            sorted((n.id, n.host, n.port) for n in d.nodes),
        )

    def producer_partitions(self, topic):
        """The partition count a producer sees for `topic`, auto-creating it."""
        p = self.producer()
        deadline = time.monotonic() + 15
        while True:
            t = p.p.list_topics(topic=topic, timeout=10).topics.get(topic)
            if t is not None and t.error is None and t.partitions:
                return len(t.partitions)
            assert time.monotonic() < deadline, f"producer metadata for {topic}: {t and t.error}"
            time.sleep(0.1)

    def _configs(self, rtype, name):
        from confluent_kafka.admin import ConfigResource

        fs = self.admin.describe_configs([ConfigResource(rtype, name)], request_timeout=10)
        (fut,) = fs.values()
        entries = self._result(fut)
        return {k: (e.value, CONFIG_SOURCES.get(e.source, str(e.source))) for k, e in entries.items()}

    def topic_configs(self, name):
        from confluent_kafka.admin import ResourceType

        return self._configs(ResourceType.TOPIC, name)

    def broker_configs(self, node_id):
        from confluent_kafka.admin import ResourceType

        return self._configs(ResourceType.BROKER, str(node_id))

    def alter_topic_configs(self, name, set_, delete):
        """IncrementalAlterConfigs: SET each of set_, DELETE each of delete."""
        from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType

        entries = [
            ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET) for k, v in set_.items()
        ] + [ConfigEntry(k, None, incremental_operation=AlterConfigOpType.DELETE) for k in delete]
        fs = self.admin.incremental_alter_configs(
            [ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)]
        )
        (fut,) = fs.values()
        self._result(fut)

    def list_groups(self):
        """{group_id: state or None} from ListGroups."""
        res = self._result(self.admin.list_consumer_groups(request_timeout=10))
        assert not res.errors, res.errors
        return {g.group_id: norm_state(g.state) for g in res.valid}

    def describe_group(self, group):
        fs = self.admin.describe_consumer_groups([group], request_timeout=10)
        d = self._result(fs[group])
        return {
            "state": norm_state(d.state),
            "protocol_type": "consumer" if not d.is_simple_consumer_group else "",
            "protocol": d.partition_assignor,
            "members": [
                {
                    "client_id": m.client_id,
                    "assignment": {
                        (tp.topic, tp.partition) for tp in (m.assignment.topic_partitions if m.assignment else [])
                    },
                }
                for m in d.members
            ],
        }

    def group_offsets(self, group, topic, partitions):
        from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

        fs = self.admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])],
            request_timeout=10,
        )
        res = self._result(fs[group])
        out = {}
        for tp in res.topic_partitions:
            assert tp.error is None, tp.error
            out[tp.partition] = tp.offset if tp.offset >= 0 else None
        return out

    def delete_group(self, group):
        fs = self.admin.delete_consumer_groups([group], request_timeout=10)
        self._result(fs[group])
        return True

    # ---- clients ----
    def producer(self, compression=None, idempotent=False, linger_ms=5):
        p = ConfluentProducer(self.bootstrap, compression, idempotent, linger_ms)
        self._closers.append(p.close)
        return p

    def consumer(self, group=None, client_id=None, isolation=None):
        """isolation: "read_committed" / "read_uncommitted", None for the library's default."""
        c = ConfluentConsumer(self.bootstrap, group, client_id, isolation)
        self._closers.append(c.close)
        return c

    def txn_producer(self, txn_id):
        """A transactional producer with init_transactions() done."""
        p = ConfluentTxnProducer(self.bootstrap, txn_id)
        self._closers.append(p.close)
        return p


class ConfluentProducer:
    def __init__(self, bootstrap, compression, idempotent, linger_ms, extra=None):
        from confluent_kafka import Producer

        conf = {"bootstrap.servers": bootstrap, "linger.ms": linger_ms, **(extra or {})}
        if compression:
            conf["compression.type"] = compression
        if idempotent:
            conf["enable.idempotence"] = True
            conf["acks"] = "all"
        self.p = Producer(conf)
        self.results = []
        self.errors = []

    def send(self, topic, msgs):
        """Produce msgs (dicts of key, value, headers, timestamp, partition); wait for
        every acknowledgement; return [(partition, offset)] in send order."""
        _check_msgs(msgs)
        results = [None] * len(msgs)
        errors = []

        def cb(i):
            def on_delivery(err, msg):
                if err is not None:
                    errors.append((i, err))
                else:
                    results[i] = (msg.partition(), msg.offset())

            return on_delivery

        for i, m in enumerate(msgs):
            kw = {"value": m.get("value"), "key": m.get("key"), "on_delivery": cb(i)}
            if m.get("headers"):
                kw["headers"] = m["headers"]
            if m.get("timestamp") is not None:
                kw["timestamp"] = m["timestamp"]
            if m.get("partition") is not None:
                kw["partition"] = m["partition"]
            while True:
                try:
                    self.p.produce(topic, **kw)
                    break
                except BufferError:
                    self.p.poll(0.1)
            self.p.poll(0)
        left = self.p.flush(30)
        assert left == 0, f"{left} messages not acknowledged within 30 s"
        self._check_delivery(errors)
        return results

    def _check_delivery(self, errors):
        assert not errors, f"delivery errors: {errors[:5]}"

    def close(self):
        self.p.flush(5)


class ConfluentTxnProducer(ConfluentProducer):
    """begin / send / send_offsets / commit / abort; a fenced error raises FencedError."""

    def __init__(self, bootstrap, txn_id):
        super().__init__(bootstrap, None, False, 5, {"transactional.id": txn_id, "transaction.timeout.ms": 60000})
        self._call(self.p.init_transactions, 30)

    @staticmethod
    def _fenced(err):
        from confluent_kafka import KafkaError

        return err.code() in (KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH)

    def _call(self, fn, *args):
        from confluent_kafka import KafkaException

        try:
            return fn(*args)
        except KafkaException as e:
            if self._fenced(e.args[0]):
                raise FencedError(str(e.args[0])) from e
            raise
        except SystemError as e:
            # confluent-kafka 2.16 raises a fatal error (fenced) from flush()
            # while it still runs delivery callbacks: the next callback then
            # fails with a SystemError whose cause is the KafkaException.
            cause = e.__cause__
            if isinstance(cause, KafkaException) and self._fenced(cause.args[0]):
                raise FencedError(str(cause.args[0])) from cause
            raise

    def _check_delivery(self, errors):
        for _, err in errors:
            if self._fenced(err):
                raise FencedError(f"delivery: {err}")
        super()._check_delivery(errors)

    def begin(self):
        self._call(self.p.begin_transaction)

    def send(self, topic, msgs):
        return self._call(super().send, topic, msgs)

    def send_offsets(self, consumer, offsets):
        """offsets {partition: next offset} of consumer's topic, with the consumer's group metadata."""
        from confluent_kafka import TopicPartition

        tps = [TopicPartition(consumer.topic, p, o) for p, o in offsets.items()]
        self._call(self.p.send_offsets_to_transaction, tps, consumer.c.consumer_group_metadata(), 30)

    def commit(self):
        self._call(self.p.commit_transaction, 30)

    def abort(self):
        self._call(self.p.abort_transaction, 30)


class ConfluentConsumer:
    def __init__(self, bootstrap, group, client_id, isolation=None):
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": bootstrap,
            # librdkafka wants a group.id even for assign(); it joins nothing then.
            "group.id": group or f"py-assign-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": HEARTBEAT_MS,
        }
        if client_id:
            conf["client.id"] = client_id
        if isolation:
            conf["isolation.level"] = isolation
        self.c = Consumer(conf)
        self.topic = None
        self.closed = False

    def subscribe(self, topic):
        self.topic = topic
        self.c.subscribe([topic])

    def assign(self, topic, offsets):
        """offsets: {partition: offset or None for the beginning}."""
        from confluent_kafka import OFFSET_BEGINNING, TopicPartition

        self.topic = topic
        self.c.assign(
            [TopicPartition(topic, p, OFFSET_BEGINNING if o is None else o) for p, o in offsets.items()]
        )

    def poll(self, timeout, max_records=1000):
        from confluent_kafka import KafkaError, TIMESTAMP_LOG_APPEND_TIME

        out = []
        for m in self.c.consume(num_messages=max_records, timeout=timeout):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise AssertionError(f"consumer error: {m.error()}")
            ts_type, ts = m.timestamp()
            out.append(
                Rec(
                    m.partition(),
                    m.offset(),
                    m.key(),
                    m.value(),
                    norm_headers(m.headers()),
                    ts,
                    "append" if ts_type == TIMESTAMP_LOG_APPEND_TIME else "create",
                )
            )
        return out

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def seek(self, offsets):
        """{partition: offset} of assigned partitions."""
        from confluent_kafka import TopicPartition

        for p, o in offsets.items():
            self.c.seek(TopicPartition(self.topic, p, o))

    def position(self, partition):
        """The offset the next record returned by poll() will have (None: not known yet)."""
        from confluent_kafka import TopicPartition

        (tp,) = self.c.position([TopicPartition(self.topic, partition)])
        return tp.offset if tp.offset >= 0 else None

    def commit(self, offsets):
        from confluent_kafka import TopicPartition

        self.c.commit(
            offsets=[TopicPartition(self.topic, p, o) for p, o in offsets.items()], asynchronous=False
        )

    def committed(self, partitions):
        from confluent_kafka import TopicPartition

        res = self.c.committed([TopicPartition(self.topic, p) for p in partitions], timeout=10)
        return {tp.partition: (tp.offset if tp.offset >= 0 else None) for tp in res}

    def offsets_for_times(self, times):
        """{partition: ts} -> {partition: (offset, timestamp or None) or None}."""
        from confluent_kafka import TopicPartition

        res = self.c.offsets_for_times([TopicPartition(self.topic, p, ts) for p, ts in times.items()], timeout=10)
        out = {}
        for tp in res:
            assert tp.error is None, tp.error
            out[tp.partition] = (tp.offset, None) if tp.offset >= 0 else None
        return out

    def watermarks(self, partition):
        from confluent_kafka import TopicPartition

        return tuple(self.c.get_watermark_offsets(TopicPartition(self.topic, partition), timeout=10))

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close()


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------


def _kp_error(e):
    code = getattr(e, "errno", None)
    if code is None:
        raise e
    return AdminError(code, str(e))


class KafkaPythonClient:
    name = "kafka-python"
    # KafkaProducer.send() accepts only (str, bytes) header tuples.
    null_header_values = False

    def __init__(self, bootstrap):
        from kafka import KafkaAdminClient

        self.bootstrap = bootstrap
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
        self._closers = [self.admin.close]

    def close(self):
        for c in reversed(self._closers):
            try:
                c()
            except Exception:
                pass

    def create_topic(self, name, partitions, configs=None):
        import kafka.errors as Errors

        try:
            self.admin.create_topics(
                {name: {"num_partitions": partitions, "replication_factor": 1, "configs": configs or {}}},
                timeout_ms=15000,
            )
        except Errors.KafkaError as e:
            raise _kp_error(e) from e

    def delete_topic(self, name):
        import kafka.errors as Errors

        try:
            self.admin.delete_topics([name], timeout_ms=15000)
        except Errors.KafkaError as e:
            raise _kp_error(e) from e

    def create_partitions(self, name, total):
        import kafka.errors as Errors

        try:
            self.admin.create_partitions({name: total}, timeout_ms=15000)
        except Errors.KafkaError as e:
            raise _kp_error(e) from e

    def list_topics(self):
        return set(self.admin.list_topics())

    def topic_partitions(self, name):
        for t in self.admin.describe_topics():
            if t["name"] == name:
                if t["error_code"] != 0:
                    return None
                return {
                    p["partition_index"]: (p["leader_id"], list(p["replica_nodes"]), list(p["isr_nodes"]))
                    for p in t["partitions"]
                }
        return None

    def cluster(self):
        d = self.admin.describe_cluster()
        return (
            d["cluster_id"],
            d["controller_id"],
            sorted((b["broker_id"], b["host"], b["port"]) for b in d["brokers"]),
        )

    def producer_partitions(self, topic):
        p = self.producer()
        parts = p.p.partitions_for(topic)
        return len(parts)

    def _configs(self, rtype, name):
        from kafka.admin import ConfigResource

        res = self.admin.describe_configs([ConfigResource(rtype, name)], config_filter="all")
        ((_, by_name),) = res.items()
        entries = by_name[name]
        return {k: (e["value"], e["config_source"]) for k, e in entries.items()}

    def topic_configs(self, name):
        from kafka.admin import ConfigResourceType

        return self._configs(ConfigResourceType.TOPIC, name)

    def broker_configs(self, node_id):
        from kafka.admin import ConfigResourceType

        return self._configs(ConfigResourceType.BROKER, str(node_id))

    def alter_topic_configs(self, name, set_, delete):
        from kafka.admin import AlterConfigOp, ConfigResource, ConfigResourceType

        configs = dict(set_)
        for k in delete:
            configs[k] = (AlterConfigOp.DELETE, None)
        res = self.admin.alter_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, configs)], incremental=True
        )
        assert res == {"topic": {name: "OK"}}, res

    def list_groups(self):
        return {g["group_id"]: norm_state(g.get("group_state") or None) for g in self.admin.list_groups()}

    def describe_group(self, group):
        d = self.admin.describe_groups([group])[group]
        members = []
        for m in d["members"]:
            a = m.get("member_assignment") or {}
            assignment = set()
            for t in a.get("assigned_partitions", a.get("assignment", [])) or []:
                topic = t.get("topic") if isinstance(t, dict) else t[0]
                parts = t.get("partitions") if isinstance(t, dict) else t[1]
                assignment |= {(topic, p) for p in parts}
            members.append({"client_id": m["client_id"], "assignment": assignment, "raw": m})
        return {
            "state": norm_state(d["group_state"]),
            "protocol_type": d["protocol_type"],
            "protocol": d["protocol_data"],
            "members": members,
        }

    def group_offsets(self, group, topic, partitions):
        from kafka import TopicPartition

        res = self.admin.list_group_offsets({group: [TopicPartition(topic, p) for p in partitions]})[group]
        return {tp.partition: (om.offset if om.offset >= 0 else None) for tp, om in res.items()}

    def delete_group(self, group):
        res = self.admin.delete_groups([group])
        return res

    def producer(self, compression=None, idempotent=False, linger_ms=5):
        p = KafkaPythonProducer(self.bootstrap, compression, idempotent, linger_ms)
        self._closers.append(p.close)
        return p

    def consumer(self, group=None, client_id=None, isolation=None):
        c = KafkaPythonConsumer(self.bootstrap, group, client_id, isolation)
        self._closers.append(c.close)
        return c

    def txn_producer(self, txn_id):
        p = KafkaPythonTxnProducer(self.bootstrap, txn_id)
        self._closers.append(p.close)
        return p


class KafkaPythonProducer:
    def __init__(self, bootstrap, compression, idempotent, linger_ms, extra=None):
        from kafka import KafkaProducer

        kw = {"bootstrap_servers": bootstrap, "linger_ms": linger_ms, "max_block_ms": 15000, **(extra or {})}
        if compression:
            kw["compression_type"] = compression
        if idempotent:
            kw["enable_idempotence"] = True
            kw["acks"] = "all"
        self.p = KafkaProducer(**kw)

    def send(self, topic, msgs):
        _check_msgs(msgs)
        futs = [
            self.p.send(
                topic,
                value=m.get("value"),
                key=m.get("key"),
                headers=m.get("headers") or None,
                partition=m.get("partition"),
                timestamp_ms=m.get("timestamp"),
            )
            for m in msgs
        ]
        self.p.flush(timeout=30)
        out = []
        for f in futs:
            md = f.get(timeout=1)
            out.append((md.partition, md.offset))
        return out

    def close(self):
        self.p.close(timeout=5)


class KafkaPythonTxnProducer(KafkaPythonProducer):
    """begin / send / send_offsets / commit / abort; a fenced error raises FencedError."""

    def __init__(self, bootstrap, txn_id):
        super().__init__(bootstrap, None, False, 5, {"transactional_id": txn_id, "transaction_timeout_ms": 60000})
        self._call(self.p.init_transactions)

    @staticmethod
    def _call(fn, *args):
        import kafka.errors as Errors

        try:
            return fn(*args)
        except (Errors.ProducerFencedError, Errors.InvalidProducerEpochError) as e:
            raise FencedError(f"{type(e).__name__}: {e}") from e

    def begin(self):
        self._call(self.p.begin_transaction)

    def send(self, topic, msgs):
        return self._call(super().send, topic, msgs)

    def send_offsets(self, consumer, offsets):
        """KIP-447 form: the consumer's group_metadata(), not just its group id."""
        from kafka.structs import OffsetAndMetadata

        self._call(
            self.p.send_offsets_to_transaction,
            {consumer._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()},
            consumer.c.group_metadata(),
        )

    def commit(self):
        self._call(self.p.commit_transaction)

    def abort(self):
        self._call(self.p.abort_transaction)


class KafkaPythonConsumer:
    def __init__(self, bootstrap, group, client_id, isolation=None):
        from kafka import KafkaConsumer

        kw = dict(
            bootstrap_servers=bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        if client_id:
            kw["client_id"] = client_id
        if isolation:
            kw["isolation_level"] = isolation
        self.c = KafkaConsumer(**kw)
        self.topic = None
        self.closed = False

    def _tp(self, p):
        from kafka import TopicPartition

        return TopicPartition(self.topic, p)

    def subscribe(self, topic):
        # kafka-python 3.0.12 drops a JoinGroup/SyncGroup result that arrives
        # after poll()'s timeout when the rejoin was started by a metadata
        # change (join_group_async is skipped once the leader's new
        # assignment matches its metadata, so need_rejoin() is False): the
        # heartbeat stays disabled, the session expires and the member is
        # silently out of the group. The metadata change comes from the
        # coordinator's metadata snapshot, which only a metadata response
        # after subscribe() fills in; a leader that assigns before that
        # response rejoins later and can hit the bug. Kafka's default
        # group.initial.rebalance.delay.ms (3 s) hides this; the suite runs
        # with 0, so wait here until the coordinator has seen the topic's
        # partitions, before the first poll sends a JoinGroup.
        self.topic = topic
        self.c.subscribe([topic])

        def coordinator_knows_topic():
            if self.c._coordinator._metadata_snapshot.get(topic):
                return True
            self.c._cluster.request_update()
            return False

        wait_until(coordinator_knows_topic, 15, f"kafka-python metadata for {topic}", interval=0.1)

    def assign(self, topic, offsets):
        self.topic = topic
        self.c.assign([self._tp(p) for p in offsets])
        for p, o in offsets.items():
            if o is None:
                self.c.seek_to_beginning(self._tp(p))
            else:
                self.c.seek(self._tp(p), o)

    def poll(self, timeout, max_records=None):
        out = []
        for tp, recs in self.c.poll(timeout_ms=int(timeout * 1000), max_records=max_records).items():
            for r in recs:
                out.append(
                    Rec(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        norm_headers(r.headers),
                        r.timestamp,
                        "append" if r.timestamp_type == 1 else "create",
                    )
                )
        return out

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def seek(self, offsets):
        for p, o in offsets.items():
            self.c.seek(self._tp(p), o)

    def position(self, partition):
        return self.c.position(self._tp(partition))

    def commit(self, offsets):
        from kafka.structs import OffsetAndMetadata

        self.c.commit({self._tp(p): OffsetAndMetadata(o, "", -1) for p, o in offsets.items()})

    def committed(self, partitions):
        return {p: self.c.committed(self._tp(p)) for p in partitions}

    def offsets_for_times(self, times):
        res = self.c.offsets_for_times({self._tp(p): ts for p, ts in times.items()})
        return {tp.partition: (None if v is None else (v.offset, v.timestamp)) for tp, v in res.items()}

    def watermarks(self, partition):
        tp = self._tp(partition)
        return (self.c.beginning_offsets([tp])[tp], self.c.end_offsets([tp])[tp])

    def close(self):
        if not self.closed:
            self.closed = True
            self.c.close(autocommit=False)


# --------------------------------------------------------------------------
# aiokafka: the async API driven from one event loop per test
# --------------------------------------------------------------------------


class AiokafkaClient:
    """Every call runs the real coroutine on this test's own event loop.
    The loop runs whenever a call is in flight, which is when aiokafka's
    background tasks (heartbeats, rebalances, fetches) make progress."""

    name = "aiokafka"
    null_header_values = True

    def __init__(self, bootstrap):
        from aiokafka.admin import AIOKafkaAdminClient

        self.bootstrap = bootstrap
        self.loop = asyncio.new_event_loop()
        self._closers = []

        async def make():
            a = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
            await a.start()
            return a

        self.admin = self.run(make())
        self._closers.append(self.admin.close)

    def run(self, coro, timeout=60):
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def close(self):
        for c in reversed(self._closers):
            try:
                self.run(c(), timeout=15)
            except Exception:
                pass
        self.loop.close()

    @staticmethod
    def _raise_codes(pairs):
        for code, msg in pairs:
            if code:
                raise AdminError(code, msg or "")

    def create_topic(self, name, partitions, configs=None):
        from aiokafka.admin import NewTopic

        r = self.run(self.admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})]))
        self._raise_codes((t[1], t[2] if len(t) > 2 else "") for t in r.topic_errors)

    def delete_topic(self, name):
        r = self.run(self.admin.delete_topics([name]))
        self._raise_codes((t[1], "") for t in r.topic_error_codes)

    def create_partitions(self, name, total):
        from aiokafka.admin import NewPartitions
        from aiokafka.errors import KafkaError

        try:
            self.run(self.admin.create_partitions({name: NewPartitions(total)}))
        except KafkaError as e:
            raise AdminError(e.errno, str(e)) from e

    def list_topics(self):
        return set(self.run(self.admin.list_topics()))

    def topic_partitions(self, name):
        for t in self.run(self.admin.describe_topics()):
            if t["topic"] == name:
                if t["error_code"] != 0:
                    return None
                return {p["partition"]: (p["leader"], list(p["replicas"]), list(p["isr"])) for p in t["partitions"]}
        return None

    def cluster(self):
        d = self.run(self.admin.describe_cluster())
        return (
            d["cluster_id"],
            d["controller_id"],
            sorted((b["node_id"], b["host"], b["port"]) for b in d["brokers"]),
        )

    def producer_partitions(self, topic):
        p = self.producer()
        return len(self.run(p.p.partitions_for(topic)))

    def _configs(self, rtype, name):
        from aiokafka.admin.config_resource import ConfigResource

        (resp,) = self.run(self.admin.describe_configs([ConfigResource(rtype, name)]))
        ((code, msg, _rtype, rname, entries),) = resp.resources
        self._raise_codes([(code, msg)])
        assert rname == name
        out = {}
        for e in entries:
            k, v, _ro, src = e[0], e[1], e[2], e[3]
            out[k] = (v, CONFIG_SOURCES.get(src, str(src)))
        return out

    def topic_configs(self, name):
        from aiokafka.admin.config_resource import ConfigResourceType

        return self._configs(ConfigResourceType.TOPIC, name)

    def broker_configs(self, node_id):
        from aiokafka.admin.config_resource import ConfigResourceType

        return self._configs(ConfigResourceType.BROKER, str(node_id))

    def alter_topic_configs(self, name, set_, delete):
        """aiokafka has only the non-incremental AlterConfigs: the request names
        the complete set of overrides, so every key left out (those in
        `delete`) goes back to its default."""
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        current = {
            k: v for k, (v, src) in self.topic_configs(name).items() if src == "DYNAMIC_TOPIC_CONFIG"
        }
        for k in delete:
            current.pop(k, None)
        current.update(set_)
        responses = self.run(
            self.admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, current)])
        )
        for r in responses:
            for res in r.resources:
                self._raise_codes([(res[0], res[1])])

    def list_groups(self):
        # aiokafka sends ListGroups v0/v1: no group state in the answer.
        return {g[0]: None for g in self.run(self.admin.list_consumer_groups())}

    def describe_group(self, group):
        from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

        (resp,) = self.run(self.admin.describe_consumer_groups([group]))
        (g,) = resp.groups
        code, gid, state, protocol_type, protocol, members = g[:6]
        self._raise_codes([(code, "")])
        out_members = []
        for m in members:
            member_id, client_id, client_host, _metadata, assignment = m[0], m[-4], m[-3], m[-2], m[-1]
            a = ConsumerProtocolMemberAssignment.decode(assignment) if assignment else None
            parts = {(tp.topic, tp.partition) for tp in a.partitions()} if a else set()
            out_members.append({"client_id": client_id, "assignment": parts})
        return {"state": norm_state(state), "protocol_type": protocol_type, "protocol": protocol, "members": out_members}

    def group_offsets(self, group, topic, partitions):
        from aiokafka import TopicPartition

        res = self.run(
            self.admin.list_consumer_group_offsets(group, partitions=[TopicPartition(topic, p) for p in partitions])
        )
        return {tp.partition: (om.offset if om.offset >= 0 else None) for tp, om in res.items()}

    def delete_group(self, group):
        return None  # AIOKafkaAdminClient has no DeleteGroups call

    def producer(self, compression=None, idempotent=False, linger_ms=5):
        p = AiokafkaProducer(self, compression, idempotent, linger_ms)
        self._closers.append(p.p.stop)
        return p

    def consumer(self, group=None, client_id=None, isolation=None):
        c = AiokafkaConsumer(self, group, client_id, isolation)
        self._closers.append(c.stop)
        return c

    def txn_producer(self, txn_id):
        p = AiokafkaTxnProducer(self, txn_id)
        self._closers.append(p.p.stop)
        return p


class AiokafkaProducer:
    def __init__(self, cli, compression, idempotent, linger_ms, extra=None):
        from aiokafka import AIOKafkaProducer

        self.cli = cli
        kw = {"bootstrap_servers": cli.bootstrap, "linger_ms": linger_ms, "request_timeout_ms": 15000, **(extra or {})}
        if compression:
            kw["compression_type"] = compression
        if idempotent:
            kw["enable_idempotence"] = True
            kw["acks"] = "all"

        async def make():
            p = AIOKafkaProducer(**kw)
            await p.start()
            return p

        self.p = cli.run(make())

    def send(self, topic, msgs):
        _check_msgs(msgs)

        async def go():
            futs = []
            for m in msgs:
                futs.append(
                    await self.p.send(
                        topic,
                        value=m.get("value"),
                        key=m.get("key"),
                        partition=m.get("partition"),
                        timestamp_ms=m.get("timestamp"),
                        headers=m.get("headers") or None,
                    )
                )
            mds = await asyncio.gather(*futs)
            return [(md.partition, md.offset) for md in mds]

        return self.cli.run(go())

    def close(self):
        self.cli.run(self.p.stop(), timeout=15)


class AiokafkaTxnProducer(AiokafkaProducer):
    """begin / send / send_offsets / commit / abort; a fenced error raises
    FencedError. start() (in AiokafkaProducer) initializes the transactions."""

    def __init__(self, cli, txn_id):
        super().__init__(cli, None, True, 5, {"transactional_id": txn_id, "transaction_timeout_ms": 60000})

    def _call(self, coro):
        from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

        try:
            return self.cli.run(coro)
        except (ProducerFenced, InvalidProducerEpoch) as e:
            raise FencedError(f"{type(e).__name__}: {e}") from e

    def begin(self):
        self._call(self.p.begin_transaction())

    def send(self, topic, msgs):
        from aiokafka.errors import InvalidProducerEpoch, ProducerFenced

        try:
            return super().send(topic, msgs)
        except (ProducerFenced, InvalidProducerEpoch) as e:
            raise FencedError(f"{type(e).__name__}: {e}") from e

    def send_offsets(self, consumer, offsets):
        """aiokafka takes the group id only (no KIP-447 group metadata)."""
        self._call(self.p.send_offsets_to_transaction({consumer._tp(p): o for p, o in offsets.items()}, consumer.group))

    def commit(self):
        self._call(self.p.commit_transaction())

    def abort(self):
        self._call(self.p.abort_transaction())


class AiokafkaConsumer:
    def __init__(self, cli, group, client_id, isolation=None):
        from aiokafka import AIOKafkaConsumer

        self.cli = cli
        kw = dict(
            bootstrap_servers=cli.bootstrap,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_MS,
        )
        if client_id:
            kw["client_id"] = client_id
        if isolation:
            kw["isolation_level"] = isolation
        self.group = group

        async def make():
            c = AIOKafkaConsumer(**kw)
            await c.start()
            return c

        self.c = cli.run(make())
        self.topic = None
        self.closed = False

    def _tp(self, p):
        from aiokafka import TopicPartition

        return TopicPartition(self.topic, p)

    def subscribe(self, topic):
        self.topic = topic
        self.c.subscribe([topic])

    def assign(self, topic, offsets):
        self.topic = topic

        async def go():
            self.c.assign([self._tp(p) for p in offsets])
            for p, o in offsets.items():
                if o is None:
                    await self.c.seek_to_beginning(self._tp(p))
                else:
                    self.c.seek(self._tp(p), o)

        self.cli.run(go())

    def poll(self, timeout, max_records=None):
        batches = self.cli.run(self.c.getmany(timeout_ms=int(timeout * 1000), max_records=max_records))
        return self._recs(batches)

    async def apoll(self, timeout):
        return self._recs(await self.c.getmany(timeout_ms=int(timeout * 1000)))

    @staticmethod
    def _recs(batches):
        out = []
        for tp, recs in batches.items():
            for r in recs:
                out.append(
                    Rec(
                        r.partition,
                        r.offset,
                        r.key,
                        r.value,
                        norm_headers(r.headers),
                        r.timestamp,
                        "append" if r.timestamp_type == 1 else "create",
                    )
                )
        return out

    def assignment(self):
        return {tp.partition for tp in self.c.assignment()}

    def seek(self, offsets):
        for p, o in offsets.items():
            self.c.seek(self._tp(p), o)

    def position(self, partition):
        return self.cli.run(self.c.position(self._tp(partition)))

    def commit(self, offsets):
        self.cli.run(self.c.commit({self._tp(p): o for p, o in offsets.items()}))

    def committed(self, partitions):
        return {p: self.cli.run(self.c.committed(self._tp(p))) for p in partitions}

    def offsets_for_times(self, times):
        res = self.cli.run(self.c.offsets_for_times({self._tp(p): ts for p, ts in times.items()}))
        return {tp.partition: (None if v is None else (v.offset, v.timestamp)) for tp, v in res.items()}

    def watermarks(self, partition):
        tp = self._tp(partition)
        lo = self.cli.run(self.c.beginning_offsets([tp]))[tp]
        hi = self.cli.run(self.c.end_offsets([tp]))[tp]
        return (lo, hi)

    async def stop(self):
        if not self.closed:
            self.closed = True
            await self.c.stop()

    def close(self):
        self.cli.run(self.stop(), timeout=15)


ADAPTERS = {
    "confluent-kafka": ConfluentClient,
    "kafka-python": KafkaPythonClient,
    "aiokafka": AiokafkaClient,
}


def wait_until(pred, seconds, what, interval=0.05):
    """pred() until it returns something truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = v
        except AssertionError as e:  # a condition that asserts counts as "not yet"
            last = e
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def poll_members(cli, consumers, until, seconds, what):
    """Poll every consumer in turn until until(received) is true, where
    received[i] lists what consumer i got. For aiokafka the consumers poll
    concurrently on the loop; for the others each poll is short (librdkafka
    and kafka-python keep heartbeating in background threads)."""
    received = [[] for _ in consumers]
    deadline = time.monotonic() + seconds
    while True:
        if isinstance(cli, AiokafkaClient):

            async def all_polls():
                return await asyncio.gather(*(c.apoll(0.1) for c in consumers))

            got = cli.run(all_polls())
        else:
            got = [c.poll(0.1) for c in consumers]
        for i, recs in enumerate(got):
            received[i].extend(recs)
        if until(received):
            return received
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {seconds}s waiting for {what}; "
                f"assignments={[sorted(c.assignment()) for c in consumers]} "
                f"received={[len(r) for r in received]}"
            )


class background_polling:
    """with background_polling(cli, consumer): ... keeps `consumer` fetching
    while the body runs. librdkafka fetches on its own threads anyway and
    aiokafka's fetcher task runs whenever the loop does (during every call),
    so only kafka-python, which fetches inside poll(), gets a polling thread.
    Errors the consumer raises meanwhile are kept in .errors."""

    def __init__(self, cli, consumer):
        self.cli, self.consumer = cli, consumer
        self.errors = []
        self._stop = False
        self._thread = None

    def _run(self):
        while not self._stop:
            try:
                self.consumer.poll(0.1)
            except Exception as e:  # the topic may vanish under it
                self.errors.append(e)
                time.sleep(0.1)

    def __enter__(self):
        if isinstance(self.cli, KafkaPythonClient):
            import threading

            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop = True
        if self._thread is not None:
            self._thread.join(10)
        return False
