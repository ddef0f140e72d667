#!/usr/bin/env bash
# kcat (librdkafka 2.0.2, Debian's package) against the release binary.
# Prints one RESULT line per scenario; exits non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
source compat/lib/broker.sh

start_broker --num-partitions 4 --set group.initial.rebalance.delay.ms=0 || exit 1
trap stop_broker EXIT
B=$STROM_BOOTSTRAP
failed=0
# kcat with a deadline; never hangs the suite.
k() { timeout 30 kcat -b "$B" "$@"; }
check() { # check SCENARIO CONDITION-EXIT-STATUS [DETAIL]
    if [ "$2" -eq 0 ]; then result kcat "$1" PASS "${3:-}"; else result kcat "$1" FAIL "${3:-}"; failed=1; fi
}
na() { result kcat "$1" PASS "n/a: $2"; }

# metadata: broker listed, auto-created topic listed with its partition.
k -L -t kc-meta >/dev/null
listing=$(k -L)
grep -q "broker 1 at $B" <<<"$listing" && grep -q 'topic "kc-meta" with 4 partitions' <<<"$listing"
check metadata $? "broker and auto-created topic listed"

na admin-topics "kcat has no admin API (topics are auto-created)"

# keyed-order: 300 keyed messages over 3 of the topic's 4 partitions (kcat
# picks the partition with -p), read back per partition in order.
for p in 0 1 2; do
    for i in $(seq 1 100); do echo "key$p:$p-$i"; done | k -P -t kc-keyed -K: -p $p
done
ok=0
for p in 0 1 2; do
    got=$(k -C -t kc-keyed -p $p -e -q -f '%k=%s\n')
    want=$(for i in $(seq 1 100); do echo "key$p=$p-$i"; done)
    [ "$got" = "$want" ] || ok=1
done
check keyed-order $ok "3 x 100 messages in order per key and partition"

# headers, timestamps, nulls (-Z: empty key/value as NULL), a 500 KB value.
big=$(head -c 500000 /dev/zero | tr '\0' 'x')
echo "hk:hv" | k -P -t kc-hdr -p 0 -K: -H trace=golden -H other=2
echo ":" | k -P -t kc-hdr -p 0 -K: -Z
printf 'big:%s\n' "$big" | k -P -t kc-hdr -p 0 -K: -X message.max.bytes=1000000
out=$(k -C -t kc-hdr -p 0 -e -q -Z -f '%k|%h|%S|%T\n')
line1=$(sed -n 1p <<<"$out"); line2=$(sed -n 2p <<<"$out"); line3=$(sed -n 3p <<<"$out")
ts=$(cut -d'|' -f4 <<<"$line1")
[[ "$line1" == "hk|trace=golden,other=2|2|"* ]] && [[ "$line2" == "NULL|"*"|-1|"* ]] && [[ "$line3" == "big||500000|"* ]] && [ "${ts:-0}" -gt 1600000000000 ]
check headers-timestamps-nulls $? "headers, CreateTime timestamp, NULL key+value, 500 KB value"

for codec in gzip snappy lz4 zstd; do
    seq 1 200 | k -P -t "kc-$codec" -z "$codec"
    got=$(k -C -t "kc-$codec" -e -q | wc -l)
    [ "$got" -eq 200 ]
    check "compression-$codec" $? "200 messages round trip"
done

seq 1 500 | k -P -t kc-idem -X enable.idempotence=true -X acks=all
[ "$(k -C -t kc-idem -e -q | wc -l)" -eq 500 ]
check idempotent $? "500 messages, idempotent producer, exactly once"

# group-commit-resume: consume all as a group (offsets committed on exit),
# produce more, the same group resumes with only the new messages.
seq 1 10 | k -P -t kc-group -p 0
first=$(k -G kc-g1 -X auto.offset.reset=earliest -e -q -f '%s\n' kc-group | wc -l)
seq 11 15 | k -P -t kc-group -p 0
second=$(k -G kc-g1 -X auto.offset.reset=earliest -e -q -f '%s\n' kc-group | tr '\n' ' ')
[ "$first" -eq 10 ] && [ "$second" = "11 12 13 14 15 " ]
check group-commit-resume $? "first run $first, resumed with: $second"

# group-rebalance: two members of one group on a 4-partition topic.
k -L -t kc-rebal >/dev/null
stop_partitions=$(mktemp -d)
# kcat's -G output says which partitions each member was assigned.
(timeout 20 kcat -b "$B" -G kc-g2 -X auto.offset.reset=earliest kc-rebal >/dev/null 2>"$stop_partitions/a") &
a=$!
(timeout 20 kcat -b "$B" -G kc-g2 -X auto.offset.reset=earliest kc-rebal >/dev/null 2>"$stop_partitions/b") &
b=$!
deadline=$((SECONDS + 20)); ok=1
while [ $SECONDS -lt $deadline ]; do
    sa=$(grep -o 'assigned: .*' "$stop_partitions/a" | tail -1); sb=$(grep -o 'assigned: .*' "$stop_partitions/b" | tail -1)
    if [ -n "$sa" ] && [ -n "$sb" ]; then
        all=$(printf '%s\n%s\n' "$sa" "$sb" | grep -o '\[[0-9]\]' | sort | tr -d '\n')
        if [ "$all" = "[0][1][2][3]" ]; then ok=0; break; fi
    fi
    sleep 0.2
done
kill "$a" "$b" 2>/dev/null; wait "$a" "$b" 2>/dev/null
check group-rebalance $ok "a: ${sa:-none}; b: ${sb:-none}"
rm -rf "$stop_partitions"

# offsets-for-times: kcat stamps messages with the current time; a lookup
# past now finds nothing (-1), a lookup at 0 finds the first offset.
seq 1 5 | k -P -t kc-times -p 0
now=$(($(date +%s) * 1000))
q=$(k -Q -t "kc-times:0:$((now + 600000))")
q0=$(k -Q -t "kc-times:0:0")
grep -q "offset -1" <<<"$q" && grep -q "offset 0" <<<"$q0"
check offsets-for-times $? "future timestamp -> -1, timestamp 0 -> offset 0"

na describe-list-groups "kcat has no group admin API"
na describe-configs "kcat has no config API"

# txn-read-committed: kcat cannot produce transactionally, so confluent-kafka
# from the Python suite's venv writes the topic: a committed, an aborted and
# a committed transaction (3 records each, offsets 0-2, marker, 4-6, marker,
# 8-10, marker), then a fourth transaction left open while kcat reads. kcat
# with isolation.level=read_committed must stop (-e) at the last stable
# offset with exactly the committed records; read_uncommitted sees all 12;
# after the open one is aborted, read_committed still sees the same 6.
py=${STROM_VENV:-$HOME/.cache/strom/venv}/bin/python
if ! "$py" -c 'import confluent_kafka' 2>/dev/null; then
    na txn-read-committed "no transactional producer here (confluent-kafka from compat/python's venv, $py, is not installed: run compat/python/run.sh first)"
else
    tx=$(mktemp -d)
    topic=kc-txn-$(date +%s%N)
    "$py" - "$B" "$topic" "$tx" >"$tx/helper.log" 2>&1 <<'PY' &
import os, sys, time
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, topic, tx = sys.argv[1:4]
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 1)])[topic].result(20)
p = Producer({"bootstrap.servers": bootstrap, "transactional.id": topic + "-txn", "linger.ms": 5})
p.init_transactions(30)
for name, commit in (("c1", True), ("ab", False), ("c2", True), ("open", None)):
    p.begin_transaction()
    for i in range(3):
        p.produce(topic, f"{name}-{i}".encode(), partition=0)
    assert p.flush(30) == 0
    if commit is None:
        break
    p.commit_transaction(30) if commit else p.abort_transaction(30)
print("open", flush=True)
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(tx, "done")) and time.monotonic() < deadline:
    time.sleep(0.05)
p.abort_transaction(30)
print("aborted", flush=True)
PY
    helper=$!
    trap 'kill "$helper" 2>/dev/null; rm -rf "$tx"; stop_broker' EXIT
    deadline=$((SECONDS + 30))
    until grep -q '^open' "$tx/helper.log" || [ $SECONDS -ge $deadline ] || ! kill -0 "$helper" 2>/dev/null; do sleep 0.05; done
    committed="0 c1-0 1 c1-1 2 c1-2 8 c2-0 9 c2-1 10 c2-2 "
    rc=$(k -C -t "$topic" -p 0 -o beginning -e -q -X isolation.level=read_committed -f '%o %s\n' | tr '\n' ' ')
    ru=$(k -C -t "$topic" -p 0 -o beginning -e -q -X isolation.level=read_uncommitted -f '%s\n' | tr '\n' ' ')
    touch "$tx/done"
    wait "$helper"; helper_status=$?
    rc2=$(k -C -t "$topic" -p 0 -o beginning -e -q -X isolation.level=read_committed -f '%o %s\n' | tr '\n' ' ')
    [ "$helper_status" -eq 0 ] && [ "$rc" = "$committed" ] && [ "$rc2" = "$committed" ] &&
        [ "$ru" = "c1-0 c1-1 c1-2 ab-0 ab-1 ab-2 c2-0 c2-1 c2-2 open-0 open-1 open-2 " ]
    check txn-read-committed $? "read_committed (open txn): ${rc:-nothing}| read_uncommitted: ${ru:-nothing}| read_committed after abort: ${rc2:-nothing}| helper: $(tr '\n' ' ' <"$tx/helper.log" | tail -c 300)"
    rm -rf "$tx"
    trap stop_broker EXIT
fi
exit $failed
