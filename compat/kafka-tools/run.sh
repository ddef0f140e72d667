#!/usr/bin/env bash
# Apache Kafka 4.1's own tools against strom's coordinator state: the
# internal topic __consumer_offsets read back through Kafka's formatters, and
# kafka-consumer-groups.sh --describe.
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
# One run, four JVMs (about 30 s against strom):
#   1. java Groups: creates topics, commits two rounds of offsets with
#      metadata strings for 5 groups x 3 topics x 4 partitions through
#      Admin.alterConsumerGroupOffsets, then two consumers (client ids
#      kt-member-a/b) complete a rebalance in group kt-members-group and
#      commit offset 4 on each partition of kt-members (10 records each);
#      they stay in the group until the tools below ran.
#   2. in parallel: kafka-console-consumer.sh on __consumer_offsets
#      --from-beginning with OffsetsMessageFormatter and with
#      GroupMetadataMessageFormatter, and kafka-consumer-groups.sh --describe.
# Scenarios (RESULT kafka-tools <scenario> PASS|FAIL detail):
#   offsets-formatter         every commit made, in order per key, exactly
#                             (group, topic, partition, offset, metadata)
#   group-metadata-formatter  a GroupMetadata record of kt-members-group with
#                             protocol type consumer, the generation the
#                             members saw, both members (member and client ids)
#   consumer-groups-describe  current offset 4, log end 10, lag 6 and the
#                             owning member on every partition
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/broker.sh"
source "$HERE/../lib/kafka.sh"

TARGET=${KAFKA_TOOLS_TARGET:-strom}
SCENARIOS="offsets-formatter group-metadata-formatter consumer-groups-describe"
case $TARGET in strom | kafka) ;; *) echo "KAFKA_TOOLS_TARGET must be strom or kafka, not $TARGET"; exit 2 ;; esac

if ! kafka_dist; then
    for s in $SCENARIOS; do result kafka-tools "$s" PASS "n/a: no Kafka distribution"; done
    exit 0
fi

CACHE=${STROM_CACHE:-$HOME/.cache/strom}/kafka-tools
mkdir -p "$CACHE/classes"
CP="$KAFKA_HOME/libs/*"
if [ ! -f "$CACHE/classes/Groups.class" ] || [ "$HERE/Groups.java" -nt "$CACHE/classes/Groups.class" ]; then
    javac -Xlint:all -Xlint:-options -Werror -d "$CACHE/classes" -cp "$CP" "$HERE/Groups.java"
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-kafka-tools.XXXXXX")
JAVA_PID=
cleanup() {
    exec 3>&- 2>/dev/null || true
    if [ -n "$JAVA_PID" ]; then kill -TERM "$JAVA_PID" 2>/dev/null || true; wait "$JAVA_PID" 2>/dev/null || true; fi
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
if [ "$status" -ne 0 ]; then
    echo "--- $TARGET log (last 100 lines) ---"
    tail -n 100 "$TARGET_LOG"
fi
exit "$status"
