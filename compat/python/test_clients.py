"""Python Kafka clients against a real strom broker.

Each scenario runs once per client (confluent-kafka, kafka-python,
aiokafka) through the adapters in clients.py, on its own topic, and
asserts what came back. Every wait is a poll with a deadline.

The broker is started by run.sh with --num-partitions 1 and
group.initial.rebalance.delay.ms=0; STROM_BOOTSTRAP names it. Where
STROM_DATA is set (run.sh sets it), the compression and idempotence
scenarios also read the stored record batch headers from strom's segment
files (DATA/logs/<topic>-<partition>/*.log) to check what the client
really sent. admin-topics runs on a broker of its own (conftest's
private_broker), since it deletes a topic under a reading consumer.
"""

import glob
import os
import socket
import struct
import time
import uuid

import pytest

from clients import (
    ADAPTERS,
    TOPIC_ALREADY_EXISTS,
    UNKNOWN_TOPIC_OR_PARTITION,
    AdminError,
    FencedError,
    background_polling,
    poll_members,
    wait_until,
)

CLIENTS = ["confluent-kafka", "kafka-python", "aiokafka"]
BOOTSTRAP = os.environ.get("STROM_BOOTSTRAP", "127.0.0.1:9092")
# Against an external broker (STROM_EXTERNAL_BOOTSTRAP) there are no segment files to read.
STROM_DATA = None if os.environ.get("STROM_EXTERNAL") else os.environ.get("STROM_DATA")

pytestmark = pytest.mark.parametrize("client", CLIENTS)


def scenario(name):
    return pytest.mark.scenario(name)


# ---------------------------------------------------------------- helpers


def consume(consumer, n, seconds, what):
    """Poll until n records arrived (fail on more or on the deadline)."""
    got = []
    deadline = time.monotonic() + seconds
    while len(got) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}: {len(got)} of {n} records")
        got.extend(consumer.poll(0.2))
    assert len(got) == n, f"{what}: expected {n} records, got {len(got)}"
    return got


def api_versions_answered(addr, seconds):
    """A new TCP connection gets an answer to ApiVersions v0 within `seconds`."""
    host, port = addr.rsplit(":", 1)
    client_id = b"strom-probe"
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    with socket.create_connection((host, int(port)), timeout=seconds) as s:
        s.settimeout(seconds)
        s.sendall(struct.pack(">i", len(body)) + body)
        got = b""
        want = 4
        try:
            while len(got) < want:  # the whole frame, so the close is clean
                chunk = s.recv(want - len(got))
                assert chunk, f"{addr} closed the connection instead of answering ApiVersions"
                got += chunk
                if len(got) == 4:
                    want = 4 + struct.unpack(">i", got)[0]
        except socket.timeout:
            raise AssertionError(f"{addr} did not answer ApiVersions on a new connection within {seconds}s") from None
    assert struct.unpack(">i", got[4:8])[0] == 4242, got


def group_name(topic):
    return f"{topic}-g-{uuid.uuid4().hex[:6]}"


def stored_batches(topic, partition):
    """The record batch headers strom stored for one partition, in order:
    dicts of base_offset, codec, producer_id, producer_epoch, base_sequence,
    count. None when the broker's data dir is not known."""
    if not STROM_DATA:
        return None
    files = sorted(glob.glob(os.path.join(STROM_DATA, "data", "logs", f"{topic}-{partition}", "*.log")))
    assert files, f"no segment files for {topic}-{partition} under {STROM_DATA}"
    out = []
    for path in files:
        with open(path, "rb") as f:
            data = f.read()
        pos = 0
        while pos + 61 <= len(data):
            base_offset, length = struct.unpack_from(">qi", data, pos)
            attrs = struct.unpack_from(">h", data, pos + 21)[0]
            pid, epoch, seq, count = struct.unpack_from(">qhii", data, pos + 43)
            out.append(
                {
                    "base_offset": base_offset,
                    "codec": attrs & 7,
                    "producer_id": pid,
                    "producer_epoch": epoch,
                    "base_sequence": seq,
                    "count": count,
                }
            )
            pos += 12 + length
    return out


CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


# ---------------------------------------------------------------- scenarios


@scenario("metadata")
def test_metadata(cli, topic):
    cli.create_topic(topic, 3)

    cluster_id, controller, nodes = cli.cluster()
    assert cluster_id, "empty cluster id"
    assert len(nodes) == 1, nodes
    node_id, host, port = nodes[0]
    assert f"{host}:{port}" == BOOTSTRAP, f"advertised {host}:{port}, bootstrap {BOOTSTRAP}"
    assert controller == node_id, (controller, node_id)

    parts = wait_until(lambda: cli.topic_partitions(topic), 10, f"metadata for {topic}")
    assert sorted(parts) == [0, 1, 2], parts
    for p, (leader, replicas, isr) in parts.items():
        assert (leader, replicas, isr) == (node_id, [node_id], [node_id]), (p, leader, replicas, isr)

    # A producer's Metadata request for an unknown topic creates it with
    # num.partitions (1).
    auto = topic + "-auto"
    assert auto not in cli.list_topics()
    assert cli.producer_partitions(auto) == 1
    assert auto in cli.list_topics()


@scenario("admin-topics")
def test_admin_topics(client, private_cli, private_broker):
    # On a broker of its own: this scenario deletes a topic that a consumer
    # is reading, which must not be able to take down the shared broker.
    cli = private_cli
    topic = f"py-{client}-admin-topics-{uuid.uuid4().hex[:8]}"
    cli.create_topic(topic, 2, {"retention.ms": "60000"})
    parts = wait_until(lambda: cli.topic_partitions(topic), 10, f"{topic} in metadata")
    assert sorted(parts) == [0, 1], parts

    with pytest.raises(AdminError) as e:
        cli.create_topic(topic, 2)
    assert e.value.code == TOPIC_ALREADY_EXISTS, e.value

    cli.create_partitions(topic, 4)
    wait_until(lambda: sorted(cli.topic_partitions(topic) or []) == [0, 1, 2, 3], 10, f"{topic} with 4 partitions")

    # A consumer reads every partition and keeps fetching (long polls at the
    # log end) while the topic is deleted.
    cli.producer().send(topic, [{"partition": p, "value": b"old-%d" % p} for p in range(4)])
    c = cli.consumer()
    c.assign(topic, {p: None for p in range(4)})
    assert sorted(r.value for r in consume(c, 4, 30, "one record per partition")) == [b"old-%d" % p for p in range(4)]
    with background_polling(cli, c):
        cli.delete_topic(topic)
        wait_until(lambda: topic not in cli.list_topics(), 10, f"{topic} gone from metadata")
        # The broker keeps serving new connections through the consumer's
        # next fetches (they long-poll up to 500 ms): probe for 2 s.
        until = time.monotonic() + 2
        while time.monotonic() < until:
            api_versions_answered(private_broker, 5)
            time.sleep(0.2)
        assert topic not in ADAPTERS[client](private_broker).list_topics()
    c.close()

    with pytest.raises(AdminError) as e:
        cli.delete_topic(topic)
    assert e.value.code == UNKNOWN_TOPIC_OR_PARTITION, e.value

    # The same name again is a new, empty topic.
    cli.create_topic(topic, 1)
    assert sorted(wait_until(lambda: cli.topic_partitions(topic), 10, f"re-created {topic}")) == [0]
    assert cli.producer().send(topic, [{"value": b"new"}]) == [(0, 0)]
    c2 = cli.consumer()
    c2.assign(topic, {0: None})
    (r,) = consume(c2, 1, 30, "the record of the re-created topic")
    assert (r.offset, r.value) == (0, b"new"), r


@scenario("keyed-order")
def test_keyed_order(cli, topic):
    cli.create_topic(topic, 3)
    keys = [f"key-{i:02d}".encode() for i in range(12)]
    n = 300
    msgs = [{"key": keys[i % len(keys)], "value": f"{keys[i % len(keys)].decode()}:{i // len(keys)}".encode()} for i in range(n)]
    acks = cli.producer().send(topic, msgs)

    c = cli.consumer()
    c.assign(topic, {0: None, 1: None, 2: None})
    recs = consume(c, n, 30, f"{n} keyed records")

    assert len({(r.partition, r.offset) for r in recs}) == n, "duplicate (partition, offset)"
    acked = {(m["key"], m["value"]): ack for m, ack in zip(msgs, acks)}
    by_key = {}
    for r in recs:
        assert acked[(r.key, r.value)] == (r.partition, r.offset), (r, acked[(r.key, r.value)])
        by_key.setdefault(r.key, []).append(r)
    assert sorted(by_key) == sorted(keys)
    for k, rs in by_key.items():
        assert len({r.partition for r in rs}) == 1, f"key {k} on partitions {sorted({r.partition for r in rs})}"
        seqs = [int(r.value.split(b":")[1]) for r in rs]
        assert seqs == list(range(len(seqs))), f"key {k} out of order: {seqs}"
        offsets = [r.offset for r in rs]
        assert offsets == sorted(offsets), f"key {k} offsets not increasing"
    assert len({rs[0].partition for rs in by_key.values()}) > 1, "all keys landed on one partition"


@scenario("headers-timestamps-nulls")
def test_headers_timestamps_nulls(cli, topic):
    cli.create_topic(topic, 1)
    ts = 1_600_000_000_123
    big = os.urandom(500 * 1024)
    headers = [("h1", b"v1"), ("h1", b"v2"), ("empty", b""), ("utf8-\u00e9", b"\xff\x00")]
    if cli.null_header_values:
        headers.append(("null", None))
    msgs = [
        {"key": None, "value": b"no-key", "headers": headers, "timestamp": ts},
        {"key": b"tombstone", "value": None, "timestamp": ts + 1},
        {"key": b"big", "value": big, "timestamp": ts + 2},
        {"key": b"", "value": b""},
    ]
    before = int(time.time() * 1000)
    acks = cli.producer().send(topic, msgs)
    after = int(time.time() * 1000)
    assert [a[1] for a in acks] == [0, 1, 2, 3], acks

    c = cli.consumer()
    c.assign(topic, {0: None})
    r0, r1, r2, r3 = consume(c, 4, 30, "4 records")

    assert [r.offset for r in (r0, r1, r2, r3)] == [0, 1, 2, 3]
    assert (r0.key, r0.value) == (None, b"no-key")
    assert r0.headers == headers, r0.headers
    assert (r0.timestamp, r0.ts_type) == (ts, "create")

    assert (r1.key, r1.value) == (b"tombstone", None)
    assert r1.headers == []
    assert r1.timestamp == ts + 1

    assert r2.key == b"big" and r2.value == big, f"500 KB value came back as {len(r2.value or b'')} bytes"
    assert r2.timestamp == ts + 2

    assert (r3.key, r3.value) == (b"", b""), (r3.key, r3.value)
    assert r3.ts_type == "create"
    assert before - 5000 <= r3.timestamp <= after + 5000, (before, r3.timestamp, after)

    # message.timestamp.type=LogAppendTime: the broker stamps the batch (and
    # rewrites its CRC, which the consumers check); the client's time is gone.
    lat = topic + "-lat"
    cli.create_topic(lat, 1, {"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    cli.producer(linger_ms=20).send(lat, [{"value": b"%d" % i, "timestamp": ts} for i in range(3)])
    after = int(time.time() * 1000)
    c2 = cli.consumer()
    c2.assign(lat, {0: None})
    recs = consume(c2, 3, 30, "3 LogAppendTime records")
    for r in recs:
        assert r.ts_type == "append", f"timestamp type {r.ts_type} on a LogAppendTime topic"
        assert before - 5000 <= r.timestamp <= after + 5000, f"log append time {r.timestamp} not in [{before}, {after}]"


def _compression(cli, topic, codec):
    cli.create_topic(topic, 1)
    n = 300
    values = [f"{codec}-{i:05d}-".encode() + b"compressible " * 40 for i in range(n)]
    cli.producer(compression=codec, linger_ms=50).send(topic, [{"key": b"k%d" % i, "value": v} for i, v in enumerate(values)])

    c = cli.consumer()
    c.assign(topic, {0: None})
    recs = consume(c, n, 30, f"{n} {codec} records")
    assert [r.offset for r in recs] == list(range(n))
    assert [r.value for r in recs] == values
    c.close()

    # From an offset inside a compressed batch: the first record is that offset.
    c2 = cli.consumer()
    c2.assign(topic, {0: 123})
    first = wait_until(lambda: c2.poll(0.2), 15, "records from offset 123")
    assert first[0].offset == 123 and first[0].value == values[123], first[0]

    batches = stored_batches(topic, 0)
    if batches is not None:
        codecs = {b["codec"] for b in batches}
        assert codecs == {CODECS[codec]}, f"stored batch codecs {codecs}, expected {CODECS[codec]} ({codec})"
        assert any(b["count"] > 1 for b in batches), "every batch holds one record"


@scenario("compression-gzip")
def test_compression_gzip(cli, topic):
    _compression(cli, topic, "gzip")


@scenario("compression-snappy")
def test_compression_snappy(cli, topic):
    _compression(cli, topic, "snappy")


@scenario("compression-lz4")
def test_compression_lz4(cli, topic):
    _compression(cli, topic, "lz4")


@scenario("compression-zstd")
def test_compression_zstd(cli, topic):
    _compression(cli, topic, "zstd")


@scenario("idempotent")
def test_idempotent(cli, topic):
    cli.create_topic(topic, 2)
    n = 400
    msgs = [{"partition": i % 2, "value": b"%d-%05d" % (i % 2, i // 2)} for i in range(n)]
    acks = cli.producer(idempotent=True).send(topic, msgs)
    for p in (0, 1):
        assert [o for (pp, o) in acks if pp == p] == list(range(n // 2)), f"acked offsets of partition {p}"

    c = cli.consumer()
    c.assign(topic, {0: None, 1: None})
    recs = consume(c, n, 30, f"{n} idempotent records")
    for p in (0, 1):
        got = [r for r in recs if r.partition == p]
        assert [r.offset for r in got] == list(range(n // 2))
        assert [r.value for r in got] == [b"%d-%05d" % (p, i) for i in range(n // 2)]

    pids = set()
    for p in (0, 1):
        batches = stored_batches(topic, p)
        if batches is None:
            continue
        seq = 0
        for b in batches:
            assert b["producer_id"] >= 0 and b["producer_epoch"] >= 0, f"batch without producer id: {b}"
            assert b["base_sequence"] == seq, f"partition {p}: base sequence {b['base_sequence']}, expected {seq}"
            seq += b["count"]
            pids.add((b["producer_id"], b["producer_epoch"]))
        assert seq == n // 2
    assert len(pids) <= 1, f"several producer ids/epochs: {pids}"


@scenario("group-commit-resume")
def test_group_commit_resume(cli, topic):
    cli.create_topic(topic, 2)
    n, first_part = 100, 40
    cli.producer().send(topic, [{"partition": i % 2, "value": b"%d" % i} for i in range(n)])
    group = group_name(topic)

    c1 = cli.consumer(group=group)
    c1.subscribe(topic)
    taken = []
    deadline = time.monotonic() + 30
    while len(taken) < first_part:
        assert time.monotonic() < deadline, f"first member got {len(taken)} of {first_part} records"
        taken.extend(c1.poll(0.2)[: first_part - len(taken)])
    commit = {}
    for r in taken:
        commit[r.partition] = max(commit.get(r.partition, 0), r.offset + 1)
    c1.commit(commit)
    assert {p: o for p, o in c1.committed([0, 1]).items() if o is not None} == commit
    c1.close()

    assert {p: o for p, o in cli.group_offsets(group, topic, [0, 1]).items() if o is not None} == commit

    c2 = cli.consumer(group=group)
    c2.subscribe(topic)
    rest = consume(c2, n - first_part, 30, "the rest after resuming")
    for p in (0, 1):
        offs = [r.offset for r in rest if r.partition == p]
        if offs:
            assert min(offs) == commit.get(p, 0), f"partition {p} resumed at {min(offs)}, committed {commit.get(p)}"
    seen_first = {(r.partition, r.offset) for r in taken}
    seen_rest = {(r.partition, r.offset) for r in rest}
    assert not seen_first & seen_rest, f"re-delivered: {sorted(seen_first & seen_rest)[:5]}"
    assert len(seen_first | seen_rest) == n
    c2.close()


@scenario("group-rebalance")
def test_group_rebalance(cli, topic):
    cli.create_topic(topic, 4)
    group = group_name(topic)
    everything = {0, 1, 2, 3}

    c1 = cli.consumer(group=group, client_id="member-1")
    c1.subscribe(topic)
    poll_members(cli, [c1], lambda _: c1.assignment() == everything, 30, "the first member to own all 4 partitions")

    c2 = cli.consumer(group=group, client_id="member-2")
    c2.subscribe(topic)

    def split(_):
        a1, a2 = c1.assignment(), c2.assignment()
        return a1 and a2 and not (a1 & a2) and (a1 | a2) == everything

    poll_members(cli, [c1, c2], split, 45, "two members with disjoint assignments covering all partitions")
    a1, a2 = c1.assignment(), c2.assignment()

    per_part = 5
    cli.producer().send(topic, [{"partition": p, "value": b"%d-%d" % (p, i)} for p in range(4) for i in range(per_part)])
    received = poll_members(cli, [c1, c2], lambda rs: sum(map(len, rs)) >= 4 * per_part, 30, "records on both members")
    for name, assigned, recs in (("member-1", a1, received[0]), ("member-2", a2, received[1])):
        parts = [r.partition for r in recs]
        assert set(parts) == assigned, f"{name} assigned {sorted(assigned)} got records of {sorted(set(parts))}"
        assert len(parts) == per_part * len(assigned), f"{name}: {len(parts)} records for {sorted(assigned)}"
    assert (c1.assignment(), c2.assignment()) == (a1, a2), "assignment changed while consuming"

    # The second member leaves: the first takes everything back.
    c2.close()
    poll_members(cli, [c1], lambda _: c1.assignment() == everything, 30, "the first member to own all 4 partitions again")


@scenario("offsets-for-times")
def test_offsets_for_times(cli, topic):
    cli.create_topic(topic, 1)
    t0 = 1_700_000_000_000
    n = 10
    # Two sends, so (at least) two batches: lookups land inside each of them.
    producer = cli.producer(linger_ms=20)
    producer.send(topic, [{"value": b"%d" % i, "timestamp": t0 + i * 1000} for i in range(n // 2)])
    producer.send(topic, [{"value": b"%d" % i, "timestamp": t0 + i * 1000} for i in range(n // 2, n)])

    c = cli.consumer()
    c.assign(topic, {0: None})
    assert c.watermarks(0) == (0, n)

    cases = [
        (t0 - 60_000, 0),
        (t0, 0),
        (t0 + 1, 1),
        (t0 + 3500, 4),
        (t0 + 4001, 5),
        (t0 + 6999, 7),
        (t0 + 9000, 9),
        (t0 + 9001, None),
    ]
    for ts, want in cases:
        got = c.offsets_for_times({0: ts})[0]
        if want is None:
            assert got is None or got[0] == -1, f"offset for {ts}: {got}, expected none"
        else:
            assert got is not None and got[0] == want, f"offset for t0+{ts - t0}: {got}, expected {want}"
            if got[1] is not None:
                assert got[1] == t0 + want * 1000, f"timestamp for offset {want}: {got[1]}"

    c.assign(topic, {0: 4})
    r = wait_until(lambda: c.poll(0.2), 15, "the record at offset 4")[0]
    assert (r.offset, r.timestamp, r.value) == (4, t0 + 4000, b"4"), r


@scenario("describe-list-groups")
def test_describe_list_groups(cli, topic):
    cli.create_topic(topic, 2)
    cli.producer().send(topic, [{"partition": i % 2, "value": b"%d" % i} for i in range(4)])
    group = group_name(topic)
    client_id = f"member-{uuid.uuid4().hex[:6]}"

    c = cli.consumer(group=group, client_id=client_id)
    c.subscribe(topic)
    got = []
    deadline = time.monotonic() + 30
    while not (c.assignment() == {0, 1} and len(got) >= 4):
        assert time.monotonic() < deadline, f"member never settled: assignment {c.assignment()} got {len(got)}"
        got.extend(c.poll(0.2))
    c.commit({0: 2, 1: 2})

    groups = cli.list_groups()
    assert group in groups, f"{group} not in {sorted(groups)}"
    assert groups[group] in (None, "stable"), groups[group]

    d = cli.describe_group(group)
    assert d["state"] == "stable", d
    assert d["protocol_type"] == "consumer", d
    assert d["protocol"], d
    assert len(d["members"]) == 1, d
    m = d["members"][0]
    assert m["client_id"] == client_id, m
    assert m["assignment"] == {(topic, 0), (topic, 1)}, m

    assert cli.group_offsets(group, topic, [0, 1]) == {0: 2, 1: 2}

    c.close()
    d = wait_until(
        lambda: (lambda d: d if d["state"] == "empty" else None)(cli.describe_group(group)),
        15,
        "the group to be empty after its member left",
    )
    assert d["members"] == [], d
    groups = cli.list_groups()
    assert groups.get(group, "missing") in (None, "empty"), groups.get(group, "missing")

    if cli.delete_group(group) is not None:
        wait_until(lambda: group not in cli.list_groups(), 10, f"{group} gone after DeleteGroups")


@scenario("describe-configs")
def test_describe_configs(cli, topic):
    cli.create_topic(topic, 1, {"retention.ms": "3600000", "cleanup.policy": "compact"})

    cfg = cli.topic_configs(topic)
    assert cfg["retention.ms"] == ("3600000", "DYNAMIC_TOPIC_CONFIG"), cfg["retention.ms"]
    assert cfg["cleanup.policy"] == ("compact", "DYNAMIC_TOPIC_CONFIG"), cfg["cleanup.policy"]
    assert cfg["segment.bytes"] == ("1073741824", "DEFAULT_CONFIG"), cfg["segment.bytes"]
    assert cfg["max.message.bytes"][0] == "1048588", cfg["max.message.bytes"]

    cli.alter_topic_configs(topic, {"retention.ms": "7200000"}, delete=["cleanup.policy"])
    cfg = wait_until(
        lambda: (lambda c: c if c["retention.ms"][0] == "7200000" else None)(cli.topic_configs(topic)),
        10,
        "the altered retention.ms",
    )
    assert cfg["retention.ms"] == ("7200000", "DYNAMIC_TOPIC_CONFIG"), cfg["retention.ms"]
    assert cfg["cleanup.policy"] == ("delete", "DEFAULT_CONFIG"), cfg["cleanup.policy"]

    node_id = cli.cluster()[2][0][0]
    broker = cli.broker_configs(node_id)
    assert broker["num.partitions"][0] == "1", broker["num.partitions"]
    assert "log.retention.hours" in broker or "log.retention.ms" in broker, sorted(broker)[:20]


# ----------------------------------------------------------- transactions
#
# A transactional producer (transactional.id unique per test) against
# read_committed and read_uncommitted consumers. Every read goes to the end
# of the log: poll until the expected number of records arrived AND the
# consumer's position on every partition reached the high watermark, so the
# consumer has stepped over every commit/abort marker and any record it
# should not have seen would have arrived by then; then compare exactly.


def txn_id(topic):
    return f"{topic}-txn-{uuid.uuid4().hex[:6]}"


def read_to_end(cli, topic, partitions, isolation, n, seconds=30):
    """A fresh consumer (no group) of `partitions` of `topic` from the
    beginning, with isolation.level `isolation`: polls until at least n
    records arrived and its position on every partition reached the high
    watermark. Returns (records, {partition: high watermark})."""
    c = cli.consumer(isolation=isolation)
    c.assign(topic, {p: None for p in partitions})
    got, hw, pos = [], None, None
    deadline = time.monotonic() + seconds
    while True:
        got.extend(c.poll(0.2))
        if len(got) >= n:
            if hw is None:
                hw = {p: c.watermarks(p)[1] for p in partitions}
            pos = {p: c.position(p) for p in partitions}
            if all(pos[p] is not None and pos[p] >= hw[p] for p in partitions):
                c.close()
                return got, hw
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{isolation} consumer of {topic}: timed out after {seconds}s with {len(got)} of {n} records, "
                f"position {pos}, high watermarks {hw}"
            )


def by_partition(recs):
    out = {}
    for r in recs:
        out.setdefault(r.partition, []).append(r)
    return out


def assert_log(recs, want, what):
    """recs (as consumed) hold exactly want {partition: [values]} in offset order."""
    got = by_partition(recs)
    for p, rs in got.items():
        offsets = [r.offset for r in rs]
        assert offsets == sorted(set(offsets)), f"{what}: partition {p} offsets not strictly increasing: {offsets}"
    got_values = {p: [r.value for r in rs] for p, rs in got.items()}
    assert got_values == {p: v for p, v in want.items() if v}, f"{what}: got {got_values}, want {want}"


@scenario("txn-commit")
def test_txn_commit(cli, topic):
    cli.create_topic(topic, 2)
    values = {p: [b"commit-%d-%02d" % (p, i) for i in range(10)] for p in (0, 1)}
    tp = cli.txn_producer(txn_id(topic))
    tp.begin()
    acks = tp.send(topic, [{"partition": p, "value": v} for p in (0, 1) for v in values[p]])
    assert acks == [(p, i) for p in (0, 1) for i in range(10)], acks

    # Open transaction: a read_uncommitted consumer gets the records; a
    # read_committed one, fetching over the same time and longer, none.
    rc = cli.consumer(isolation="read_committed")
    rc.assign(topic, {0: None, 1: None})
    ru = cli.consumer(isolation="read_uncommitted")
    ru.assign(topic, {0: None, 1: None})
    uncommitted = consume(ru, 20, 30, "uncommitted records of the open transaction")
    assert_log(uncommitted, values, "read_uncommitted, transaction open")
    early = []
    until = time.monotonic() + 1.0
    while time.monotonic() < until:
        early.extend(rc.poll(0.2))
    assert early == [], f"read_committed consumer got records of an open transaction: {early[:3]}"

    tp.commit()
    # The consumer that waited gets them now, exactly once.
    assert_log(consume(rc, 20, 30, "committed records"), values, "read_committed after the commit")

    for isolation in ("read_committed", "read_uncommitted"):
        recs, hw = read_to_end(cli, topic, (0, 1), isolation, 20)
        assert_log(recs, values, isolation)
        # 10 records and the commit marker on each partition.
        assert hw == {0: 11, 1: 11}, f"high watermarks {hw}, expected 11 (10 records + commit marker)"


@scenario("txn-abort")
def test_txn_abort(cli, topic):
    cli.create_topic(topic, 2)
    tp = cli.txn_producer(txn_id(topic))
    txns = []
    for name, end in (("first", "commit"), ("second", "abort"), ("third", "commit")):
        vals = {p: [b"%s-%d-%d" % (name.encode(), p, i) for i in range(3)] for p in (0, 1)}
        tp.begin()
        tp.send(topic, [{"partition": p, "value": v} for p in (0, 1) for v in vals[p]])
        if end == "commit":
            tp.commit()
        else:
            tp.abort()
        txns.append((end, vals))

    committed = {p: [v for end, vals in txns if end == "commit" for v in vals[p]] for p in (0, 1)}
    everything = {p: [v for _, vals in txns for v in vals[p]] for p in (0, 1)}

    # read_committed: the first and third transactions, in order, none of
    # the aborted one; its position reaches the high watermark (past the
    # aborted batches and the three markers).
    recs, hw = read_to_end(cli, topic, (0, 1), "read_committed", 12)
    assert_log(recs, committed, "read_committed")
    assert hw == {0: 12, 1: 12}, f"high watermarks {hw}, expected 12 (9 records + 3 markers)"

    recs, hw = read_to_end(cli, topic, (0, 1), "read_uncommitted", 18)
    assert_log(recs, everything, "read_uncommitted")


@scenario("txn-consume-transform-produce")
def test_txn_consume_transform_produce(cli, topic):
    src, dst = topic + "-in", topic + "-out"
    cli.create_topic(src, 2)
    cli.create_topic(dst, 2)
    n = 60
    inputs = [{"partition": i % 2, "key": b"k%d" % i, "value": b"in-%03d" % i} for i in range(n)]
    cli.producer().send(src, inputs)
    end = {0: n // 2, 1: n // 2}

    def transform(value):
        return b"out-" + value[3:]

    group = group_name(src)
    c = cli.consumer(group=group, isolation="read_committed")
    c.subscribe(src)
    tp = cli.txn_producer(txn_id(topic))
    committed = {}  # partition -> next offset, as committed in a transaction
    batches = commits = aborts = aborted_records = 0
    deadline = time.monotonic() + 60
    while committed != end:
        assert time.monotonic() < deadline, (
            f"committed {committed} of {end} after {batches} batches ({commits} committed, {aborts} aborted)"
        )
        recs = c.poll(0.2, max_records=7)
        if not recs:
            continue
        batches += 1
        tp.begin()
        tp.send(dst, [{"partition": r.partition, "key": r.key, "value": transform(r.value)} for r in recs])
        offsets = {}
        for r in recs:
            offsets[r.partition] = max(offsets.get(r.partition, 0), r.offset + 1)
        tp.send_offsets(c, offsets)
        if batches % 3 == 0:
            # Aborted: the output and the offsets are discarded; rewind to
            # the last committed position, as an EOS application does.
            tp.abort()
            aborts += 1
            aborted_records += len(recs)
            c.seek({p: committed.get(p, 0) for p in offsets})
        else:
            tp.commit()
            commits += 1
            committed.update(offsets)
    assert aborts >= 1 and commits >= 2, (batches, commits, aborts)

    assert cli.group_offsets(group, src, [0, 1]) == end, "group offsets after the last transaction"
    c.close()

    want = {p: sorted(transform(m["value"]) for m in inputs if m["partition"] == p) for p in (0, 1)}
    recs, _ = read_to_end(cli, dst, (0, 1), "read_committed", n)
    got = {p: sorted(r.value for r in rs) for p, rs in by_partition(recs).items()}
    assert got == want, f"read_committed output: {sum(map(len, got.values()))} records, want each of {n} once"
    # The aborted transactions' output is in the log, visible read_uncommitted.
    recs, _ = read_to_end(cli, dst, (0, 1), "read_uncommitted", n + aborted_records)
    assert len(recs) == n + aborted_records, (len(recs), n, aborted_records)


@scenario("txn-fencing")
def test_txn_fencing(cli, topic):
    cli.create_topic(topic, 1)
    tid = txn_id(topic)
    p1 = cli.txn_producer(tid)
    p1.begin()
    p1.send(topic, [{"value": b"p1-committed"}])
    p1.commit()
    p1.begin()
    p1.send(topic, [{"value": b"p1-open"}])

    # A new producer with the same transactional.id: its InitProducerId
    # aborts p1's open transaction and bumps the epoch.
    p2 = cli.txn_producer(tid)
    with pytest.raises(FencedError):
        p1.send(topic, [{"value": b"p1-zombie"}])
        p1.commit()

    p2.begin()
    p2.send(topic, [{"value": b"p2-committed"}])
    p2.commit()

    recs, _ = read_to_end(cli, topic, (0,), "read_committed", 2)
    assert [r.value for r in recs] == [b"p1-committed", b"p2-committed"], [r.value for r in recs]
