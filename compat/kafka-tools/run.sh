#!/usr/bin/env bash
# Apache Kafka 4.1's own tools against strom's coordinator state: the
# internal topics __consumer_offsets and __transaction_state read back
# through Kafka's formatters, kafka-consumer-groups.sh --describe, and
# kafka-transactions.sh (list, describe, describe-producers, find-hanging,
# abort) on a hanging transaction.
#
#   bash compat/kafka-tools/run.sh                          # against the release strom binary
#   KAFKA_TOOLS_TARGET=kafka bash compat/kafka-tools/run.sh # the same scenarios against a real
#                                                           # Kafka 4.1 (the expectations are Kafka's)
#   KAFKA_TOOLS_KEEP=DIR ...      # keeps the clients' and tools' outputs in DIR
#
# The distribution comes from ../shared/kafka/kafka_2.13-4.1.0.tgz beside the
# repo, unpacked once into ${STROM_CACHE:-~/.cache/strom}/kafka
# (compat/lib/kafka.sh); without it every scenario prints
# "PASS n/a: no Kafka distribution". Groups.java is compiled against its libs/.
#
# One run, about a dozen JVMs (the first four: about 30 s against strom):
#   1. java Groups: creates topics, commits two rounds of offsets with
#      metadata strings for 5 groups x 3 topics x 4 partitions through
#      Admin.alterConsumerGroupOffsets, then two consumers (client ids
#      kt-member-a/b) complete a rebalance in group kt-members-group and
#      commit offset 4 on each partition of kt-members (10 records each);
#      they stay in the group until the tools below ran.
#   2. in parallel: kafka-console-consumer.sh on __consumer_offsets
#      --from-beginning with OffsetsMessageFormatter and with
#      GroupMetadataMessageFormatter, and kafka-consumer-groups.sh --describe.
#   3. java Txns: topic kt-txn; transactional id kt-txn-done commits 3
#      records (offsets 0-2, marker 3); kt-txn-open produces 5 (offsets 4-8)
#      and leaves its transaction open (no commit, no abort; timeout 15 min).
#      Then kafka-transactions.sh list, describe, describe-producers,
#      find-hanging, abort (WriteTxnMarkers from the admin client), a
#      read_committed check by Txns, describe-producers again, and
#      kafka-console-consumer.sh on __transaction_state with
#      TransactionLogMessageFormatter.
# Scenarios (RESULT kafka-tools <scenario> PASS|FAIL detail):
#   offsets-formatter         every commit made, in order per key, exactly
#                             (group, topic, partition, offset, metadata)
#   group-metadata-formatter  a GroupMetadata record of kt-members-group with
#                             protocol type consumer, the generation the
#                             members saw, both members (member and client ids)
#   consumer-groups-describe  current offset 4, log end 10, lag 6 and the
#                             owning member on every partition
#   txn-list                  kt-txn-open Ongoing, kt-txn-done CompleteCommit
#   txn-describe              kt-txn-open: the listed producer id, state
#                             Ongoing, timeout 900000, partitions kt-txn-0
#   txn-describe-producers    kt-txn-0: kt-txn-open's producer (id, epoch)
#                             with current transaction start offset 4, the
#                             committed producer with None (not compared:
#                             LatestCoordinatorEpoch, which Kafka reports from
#                             the producer's last marker, 0, and strom as -1)
#   txn-find-hanging          --broker-id 1 and --topic kt-txn, with
#                             --max-transaction-timeout 0: no row (the open
#                             transaction is one the coordinator knows)
#   txn-abort                 abort --producer-id/--producer-epoch/
#                             --coordinator-epoch: exit 0, then the LSO is the
#                             high watermark (10), read_committed reads only
#                             done-0..2, describe-producers shows None
#   txn-log-formatter         __transaction_state through
#                             TransactionLogMessageFormatter: the last state
#                             of kt-txn-done is CompleteCommit, of kt-txn-open
#                             Ongoing with kt-txn [0] and its producer id/epoch
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/broker.sh"
source "$HERE/../lib/kafka.sh"

TARGET=${KAFKA_TOOLS_TARGET:-strom}
SCENARIOS="offsets-formatter group-metadata-formatter consumer-groups-describe
    txn-list txn-describe txn-describe-producers txn-find-hanging txn-abort txn-log-formatter"
case $TARGET in strom | kafka) ;; *) echo "KAFKA_TOOLS_TARGET must be strom or kafka, not $TARGET"; exit 2 ;; esac

if ! kafka_dist; then
    for s in $SCENARIOS; do result kafka-tools "$s" PASS "n/a: no Kafka distribution"; done
    exit 0
fi

CACHE=${STROM_CACHE:-$HOME/.cache/strom}/kafka-tools
mkdir -p "$CACHE/classes"
CP="$KAFKA_HOME/libs/*"
for cls in Groups Txns; do
    if [ ! -f "$CACHE/classes/$cls.class" ] || [ "$HERE/$cls.java" -nt "$CACHE/classes/$cls.class" ]; then
        javac -Xlint:all -Xlint:-options -Werror -d "$CACHE/classes" -cp "$CP" "$HERE/$cls.java"
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-kafka-tools.XXXXXX")
JAVA_PID=
TXNS_PID=
cleanup() {
    exec 3>&- 2>/dev/null || true
    exec 4>&- 2>/dev/null || true
    local pid
    for pid in $JAVA_PID $TXNS_PID; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    if [ -n "${KAFKA_TOOLS_KEEP:-}" ]; then mkdir -p "$KAFKA_TOOLS_KEEP"; cp -r "$WORK"/. "$KAFKA_TOOLS_KEEP"/ || true; fi
    if [ "$TARGET" = kafka ]; then stop_kafka; else stop_broker; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$TARGET" = kafka ]; then
    start_kafka
    BOOT=$KAFKA_BOOTSTRAP
    TARGET_LOG=$KAFKA_STATE/kafka.out
else
    [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
    start_broker --num-partitions 1 --set group.initial.rebalance.delay.ms=0 --log-level "${STROM_LOG_LEVEL:-info}"
    BOOT=$STROM_BOOTSTRAP
    TARGET_LOG=$STROM_DATA/strom.log
fi
echo "kafka-tools: $TARGET on $BOOT"
LOG4J=(-Dlog4j2.configurationFile="$KAFKA_HOME/config/tools-log4j2.yaml")

# 1. Commits and the two members, which stay in the group while stdin (fd 3)
#    is open.
mkfifo "$WORK/stdin"
java "${LOG4J[@]}" -cp "$CACHE/classes:$CP" Groups "$BOOT" <"$WORK/stdin" >"$WORK/groups.out" 2>"$WORK/groups.err" &
JAVA_PID=$!
exec 3>"$WORK/stdin"
deadline=$((SECONDS + 120))
until grep -q '^READY ' "$WORK/groups.out"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$JAVA_PID" 2>/dev/null; then
        echo "Groups did not get ready:"; cat "$WORK/groups.out" "$WORK/groups.err"; tail -n 50 "$TARGET_LOG"
        for s in $SCENARIOS; do result kafka-tools "$s" FAIL "the committing clients failed (see above)"; done
        exit 1
    fi
    sleep 0.1
done

# 2. The tools, in parallel. The console consumer ends after --timeout-ms
#    without a new record.
formatter() { # formatter CLASS OUT
    timeout 90 "$KAFKA_HOME/bin/kafka-console-consumer.sh" --bootstrap-server "$BOOT" \
        --topic __consumer_offsets --from-beginning --timeout-ms 4000 \
        --formatter "org.apache.kafka.tools.consumer.$1" >"$WORK/$2.out" 2>"$WORK/$2.err" || true
}
formatter OffsetsMessageFormatter offsets &
p1=$!
formatter GroupMetadataMessageFormatter groupmeta &
p2=$!
timeout 90 "$KAFKA_HOME/bin/kafka-consumer-groups.sh" --bootstrap-server "$BOOT" --describe \
    --group kt-members-group >"$WORK/describe.out" 2>"$WORK/describe.err" || true
wait "$p1" "$p2" || true
exec 3>&-
wait "$JAVA_PID" || echo "Groups exited with status $? (after the tools ran)"
JAVA_PID=

# 3. Transactions: one committed, one left open by a live producer.
#    strom serves transaction protocol version 1; a fresh Kafka 4.1 cluster
#    runs transaction.version 2 (an epoch bump per transaction), so Kafka is
#    compared at version 1.
if [ "$TARGET" = kafka ]; then
    "$KAFKA_HOME/bin/kafka-features.sh" --bootstrap-server "$BOOT" downgrade \
        --feature transaction.version=1 >"$WORK/txn-features.out" 2>&1 ||
        { echo "kafka-features.sh could not set transaction.version=1:"; cat "$WORK/txn-features.out"; }
fi
mkfifo "$WORK/txn-stdin"
java "${LOG4J[@]}" -cp "$CACHE/classes:$CP" Txns "$BOOT" <"$WORK/txn-stdin" >"$WORK/txns.out" 2>"$WORK/txns.err" &
TXNS_PID=$!
exec 4>"$WORK/txn-stdin"
txn_ready=1
deadline=$((SECONDS + 120))
until grep -q '^READY' "$WORK/txns.out"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$TXNS_PID" 2>/dev/null; then
        echo "Txns did not get ready:"; cat "$WORK/txns.out" "$WORK/txns.err"; tail -n 50 "$TARGET_LOG"
        txn_ready=0
        break
    fi
    sleep 0.1
done
txn() { # txn NAME ARGS...: kafka-transactions.sh; WORK/txn-NAME.out, .err, .rc
    local out=txn-$1 rc=0
    shift
    timeout 90 "$KAFKA_HOME/bin/kafka-transactions.sh" --bootstrap-server "$BOOT" "$@" \
        >"$WORK/$out.out" 2>"$WORK/$out.err" || rc=$?
    echo "$rc" >"$WORK/$out.rc"
}
# check N: Txns prints "CHECK lso hw values"; wait for the Nth such line.
txn_check() {
    echo check >&4
    local deadline=$((SECONDS + 90))
    until [ "$(grep -c '^CHECK ' "$WORK/txns.out")" -ge "$1" ]; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$TXNS_PID" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
}
if [ "$txn_ready" = 1 ]; then
    txn list list
    txn describe describe --transactional-id kt-txn-open
    txn producers describe-producers --topic kt-txn --partition 0
    txn hanging-broker find-hanging --broker-id 1 --max-transaction-timeout 0
    txn hanging-topic find-hanging --topic kt-txn --max-transaction-timeout 0
    txn_check 1 || true
    # The open transaction's producer, from describe-producers: the row
    # whose current transaction starts at the offset Txns printed.
    start=$(awk '/^OPEN / { print $2 }' "$WORK/txns.out")
    read -r pid epoch cepoch < <(awk -v s="$start" '$6 == s { print $1, $2, $3 }' "$WORK/txn-producers.out") || true
    if [ -n "${pid:-}" ]; then
        txn abort abort --topic kt-txn --partition 0 --producer-id "$pid" \
            --producer-epoch "$epoch" --coordinator-epoch "$cepoch"
    else
        echo "no producer with a transaction starting at $start in describe-producers" >"$WORK/txn-abort.err"
        echo 99 >"$WORK/txn-abort.rc"
    fi
    txn_check 2 || true
    txn producers-after describe-producers --topic kt-txn --partition 0
    txn describe-after describe --transactional-id kt-txn-open
    timeout 90 "$KAFKA_HOME/bin/kafka-console-consumer.sh" --bootstrap-server "$BOOT" \
        --topic __transaction_state --from-beginning --timeout-ms 4000 \
        --formatter org.apache.kafka.tools.consumer.TransactionLogMessageFormatter \
        >"$WORK/txnlog.out" 2>"$WORK/txnlog.err" || true
fi
exec 4>&-
wait "$TXNS_PID" || echo "Txns exited with status $? (after the tools ran)"
TXNS_PID=

status=0
python3 - "$WORK" <<'PY' || status=$?
import json, os, re, sys

work = sys.argv[1]
def read(name):
    with open(os.path.join(work, name), errors="replace") as f:
        return f.read()

def records(text):
    """Every top-level JSON object in a formatter's output (Kafka 4.1 prints
    them without a separator, strom's may add newlines)."""
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        out.append(obj)
        i = end

groups_out = read("groups.out")
commits, members, generation = [], {}, None
for line in groups_out.splitlines():
    f = line.split(" ")
    if f[0] == "COMMIT":
        commits.append((f[1], f[2], int(f[3]), int(f[4]), f[5]))
    elif f[0] == "MEMBER":
        members[f[1]] = (f[2], [int(p) for p in f[3].split(",") if p])
    elif f[0] == "READY":
        generation = int(f[1])
MEMBERS_GROUP, MEMBERS_TOPIC = "kt-members-group", "kt-members"
for client, (_mid, parts) in sorted(members.items()):
    for p in parts:
        commits.append((MEMBERS_GROUP, MEMBERS_TOPIC, p, 4, ""))
failed = False

def result(scenario, ok, detail):
    global failed
    failed |= not ok
    print(f"RESULT kafka-tools {scenario} {'PASS' if ok else 'FAIL'} {detail}")

def tail(name, n=15):
    lines = read(name).splitlines()
    return "\n".join(lines[-n:])

# offsets-formatter: every commit, in commit order per (group, topic, partition).
ours = {c[0] for c in commits}
want, got = {}, {}
for g, t, p, o, m in commits:
    want.setdefault((g, t, p), []).append((o, m))
seen = 0
for r in records(read("offsets.out")):
    key, value = r.get("key") or {}, r.get("value")
    data = key.get("data") or {}
    if data.get("group") not in ours or "topic" not in data:
        continue
    seen += 1
    v = (value or {}).get("data") or {}
    got.setdefault((data["group"], data["topic"], data["partition"]), []).append(
        (v.get("offset"), v.get("metadata")) if value is not None else ("tombstone", None))
if got == want:
    result("offsets-formatter", True, f"{len(commits)} commits of {len(ours)} groups, each printed in order")
else:
    missing = sorted(k for k in want if got.get(k) != want[k])
    extra = sorted(k for k in got if k not in want)
    k = (missing or extra)[0]
    result("offsets-formatter", False,
           f"{seen} offset records of our groups printed, {len(commits)} commits made; {len(missing)} keys differ, "
           f"{len(extra)} unexpected; e.g. {k}: want {want.get(k)}, got {got.get(k)}")
    print("--- offsets formatter stderr ---\n" + tail("offsets.err"))
    print("--- offsets formatter stdout (first 1500 chars) ---\n" + read("offsets.out")[:1500])

# group-metadata-formatter: the record of the generation both members saw.
expect_members = {client: mid for client, (mid, _parts) in members.items()}
found, versions = None, []
for r in records(read("groupmeta.out")):
    key, value = r.get("key") or {}, r.get("value")
    if (key.get("data") or {}).get("group") != MEMBERS_GROUP or value is None or "topic" in key.get("data", {}):
        continue
    v = value.get("data") or {}
    versions.append(v.get("generation"))
    if v.get("generation") == generation:
        found = v
if found is None:
    result("group-metadata-formatter", False,
           f"no GroupMetadata record of {MEMBERS_GROUP} with generation {generation}; generations printed: {versions}")
    print("--- group metadata formatter stderr ---\n" + tail("groupmeta.err"))
    print("--- group metadata formatter stdout (first 1500 chars) ---\n" + read("groupmeta.out")[:1500])
else:
    got_members = {m.get("clientId"): m.get("memberId") for m in found.get("members") or []}
    problems = []
    if found.get("protocolType") != "consumer":
        problems.append(f"protocolType {found.get('protocolType')!r}")
    if got_members != expect_members:
        problems.append(f"members {got_members} != {expect_members}")
    if found.get("leader") not in expect_members.values():
        problems.append(f"leader {found.get('leader')!r} is not a member")
    if not found.get("protocol"):
        problems.append("no protocol (assignor) name")
    result("group-metadata-formatter", not problems,
           "; ".join(problems) if problems else
           f"generation {generation}, protocol {found.get('protocol')}, members {sorted(expect_members)}")

# consumer-groups-describe: one row per partition with offset 4, log end 10,
# lag 6 and the owning member.
owner = {p: (client, mid) for client, (mid, parts) in members.items() for p in parts}
rows = {}
for line in read("describe.out").splitlines():
    f = line.split()
    if len(f) >= 9 and f[0] == MEMBERS_GROUP and f[1] == MEMBERS_TOPIC:
        rows[int(f[2])] = f
problems = []
for p in range(4):
    f = rows.get(p)
    if f is None:
        problems.append(f"no row for partition {p}")
        continue
    client, mid = owner.get(p, ("?", "?"))
    if f[3:6] != ["4", "10", "6"]:
        problems.append(f"partition {p}: current/log-end/lag {f[3:6]} != ['4', '10', '6']")
    if f[6] != mid or f[8] != client:
        problems.append(f"partition {p}: consumer {f[6]} client {f[8]} != {mid} {client}")
result("consumer-groups-describe", not problems,
       "; ".join(problems) if problems else "4 partitions: offset 4, log end 10, lag 6, owners right")
if problems:
    print("--- describe ---\n" + read("describe.out") + read("describe.err")[-1500:])
sys.exit(1 if failed else 0)
PY
python3 - "$WORK" <<'PY' || status=1
import json, os, sys

work = sys.argv[1]
def read(name):
    try:
        with open(os.path.join(work, name), errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""

def table(name):
    """A kafka-transactions.sh table: the header's columns -> rows of dicts."""
    lines = [l for l in read(name + ".out").splitlines() if l.strip()]
    if not lines:
        return None
    head = lines[0].split()
    return [dict(zip(head, (v.strip() for v in l.split(None, len(head) - 1)))) for l in lines[1:]]

failed = False
def result(scenario, ok, detail, show=()):
    global failed
    failed |= not ok
    print(f"RESULT kafka-tools {scenario} {'PASS' if ok else 'FAIL'} {detail}")
    if not ok:
        for name in show:
            print(f"--- {name} (rc {read(name + '.rc').strip()}) ---\n{read(name + '.out')}{read(name + '.err')[-1500:]}")

txns = read("txns.out")
if "READY" not in txns:
    for s in ["txn-list", "txn-describe", "txn-describe-producers", "txn-find-hanging", "txn-abort", "txn-log-formatter"]:
        result(s, False, "Txns did not get ready (see above)")
    sys.exit(1)
start = next(int(l.split()[1]) for l in txns.splitlines() if l.startswith("OPEN "))
checks = [l.split(" ", 3) for l in txns.splitlines() if l.startswith("CHECK ")]

# txn-list
rows = table("txn-list") or []
by_id = {r.get("TransactionalId"): r for r in rows}
open_row, done_row = by_id.get("kt-txn-open"), by_id.get("kt-txn-done")
pid = open_row.get("ProducerId") if open_row else None
problems = []
if not open_row or open_row.get("TransactionState") != "Ongoing":
    problems.append(f"kt-txn-open: {open_row}")
if not done_row or done_row.get("TransactionState") != "CompleteCommit":
    problems.append(f"kt-txn-done: {done_row}")
result("txn-list", not problems, "; ".join(problems) or
       f"kt-txn-open Ongoing (producer {pid}), kt-txn-done CompleteCommit", ["txn-list"])

# txn-describe
rows = table("txn-describe") or []
d = rows[0] if rows else {}
problems = []
want = {"TransactionalId": "kt-txn-open", "ProducerId": pid, "TransactionState": "Ongoing",
        "TransactionTimeoutMs": "900000", "TopicPartitions": "kt-txn-0"}
for k, v in want.items():
    if d.get(k, "").strip() != v:
        problems.append(f"{k} {d.get(k)!r} != {v!r}")
epoch = d.get("ProducerEpoch")
result("txn-describe", not problems and read("txn-describe.rc").strip() == "0", "; ".join(problems) or
       f"producer {pid} epoch {epoch}, Ongoing, timeout 900000, kt-txn-0, coordinator {d.get('CoordinatorId')}",
       ["txn-describe"])

# txn-describe-producers
rows = table("txn-producers") or []
problems = []
mine = [r for r in rows if r.get("ProducerId") == pid]
if len(mine) != 1 or mine[0].get("ProducerEpoch") != epoch or mine[0].get("CurrentTransactionStartOffset", "").strip() != str(start):
    problems.append(f"open producer {pid} epoch {epoch} start {start}: rows {mine}")
others = [r for r in rows if r.get("ProducerId") != pid]
if len(others) != 1 or others[0].get("CurrentTransactionStartOffset", "").strip() != "None":
    problems.append(f"the committed producer: rows {others}")
result("txn-describe-producers", not problems, "; ".join(problems) or
       f"producer {pid} epoch {epoch} transaction from offset {start}; the committed producer: None; "
       f"coordinator epochs {[r.get('LatestCoordinatorEpoch') for r in rows]}", ["txn-producers"])

# txn-find-hanging
problems = []
for name in ["txn-hanging-broker", "txn-hanging-topic"]:
    rows = table(name)
    if read(name + ".rc").strip() != "0" or rows is None or rows:
        problems.append(f"{name}: rc {read(name + '.rc').strip()}, rows {rows}")
result("txn-find-hanging", not problems, "; ".join(problems) or
       "--broker-id 1 and --topic kt-txn: the header, no hanging transaction", ["txn-hanging-broker", "txn-hanging-topic"])

# txn-abort
problems = []
if read("txn-abort.rc").strip() != "0":
    problems.append(f"abort exited {read('txn-abort.rc').strip()}")
if len(checks) < 2:
    problems.append(f"{len(checks)} read_committed checks answered, 2 wanted")
else:
    _, lso0, hw0, _ = (checks[0] + [""])[:4]
    _, lso, hw, values = (checks[1] + [""])[:4]
    if lso0 != str(start):
        problems.append(f"before the abort: LSO {lso0} != {start}")
    if lso != hw or int(hw) != start + 6:
        problems.append(f"after the abort: LSO {lso}, high watermark {hw} (want both {start + 6})")
    if values != "done-0,done-1,done-2":
        problems.append(f"read_committed read {values!r}")
after = [r for r in (table("txn-producers-after") or []) if r.get("ProducerId") == pid]
if len(after) != 1 or after[0].get("CurrentTransactionStartOffset", "").strip() != "None":
    problems.append(f"describe-producers after the abort: {after}")
desc_after = (table("txn-describe-after") or [{}])[0]
result("txn-abort", not problems, "; ".join(problems) or
       f"marker written: LSO {checks[0][1]} -> {checks[1][1]} = high watermark, read_committed reads done-0..2, "
       f"producer {pid} has no open transaction; the coordinator still says {desc_after.get('TransactionState')}",
       ["txn-abort", "txn-producers-after"])

# txn-log-formatter
def records(text):
    dec, out, i = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", i)
        if i < 0:
            return out
        try:
            obj, end = dec.raw_decode(text, i)
        except ValueError:
            i += 1
            continue
        out.append(obj)
        i = end
last, count = {}, {}
for r in records(read("txnlog.out")):
    tid = ((r.get("key") or {}).get("data") or {}).get("transactionalId")
    if tid in ("kt-txn-open", "kt-txn-done"):
        last[tid] = ((r.get("value") or {}).get("data") or {})
        count[tid] = count.get(tid, 0) + 1
problems = []
o, dn = last.get("kt-txn-open", {}), last.get("kt-txn-done", {})
status_names = {0: "Empty", 1: "Ongoing", 2: "PrepareCommit", 3: "PrepareAbort", 4: "CompleteCommit", 5: "CompleteAbort"}
def status(v):
    s = v.get("transactionStatus")
    return status_names.get(s, s)
if status(dn) != "CompleteCommit":
    problems.append(f"kt-txn-done's last record: {dn}")
parts = [(p.get("topic"), p.get("partitionIds")) for p in o.get("transactionPartitions") or []]
if status(o) != "Ongoing" or str(o.get("producerId")) != str(pid) or str(o.get("producerEpoch")) != str(epoch) \
        or parts != [("kt-txn", [0])] or o.get("transactionTimeoutMs") != 900000:
    problems.append(f"kt-txn-open's last record: {o}")
result("txn-log-formatter", not problems, "; ".join(problems) or
       f"records per id {count}; kt-txn-done CompleteCommit, kt-txn-open Ongoing {parts} producer {pid} epoch {epoch}",
       ["txnlog"])
sys.exit(1 if failed else 0)
PY
if [ "$status" -ne 0 ]; then
    echo "--- $TARGET log (last 100 lines) ---"
    tail -n 100 "$TARGET_LOG"
fi
exit "$status"
