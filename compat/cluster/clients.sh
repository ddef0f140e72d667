#!/usr/bin/env bash
# The Java client's scenarios against a three-node strom cluster (every
# node in the bootstrap list; auto-created topics get replication factor
# 3, the scenarios' own topics the factor they ask for; partition leaders
# and group coordinators spread over the three brokers). RESULT lines say
# `java-3-nodes`; then kafkajs and the Python clients (`<client>-3-nodes`).
# Then Apache Kafka 4.1's admin tools (from
# ../shared/kafka, compat/lib/kafka.sh) against the same cluster, RESULT
# lines `kafka-cli-3-nodes`: kafka-topics --describe (Leader, Replicas,
# Isr), kafka-metadata-quorum describe --status / --replication,
# kafka-leader-election --election-type preferred, kafka-reassign-partitions
# --execute / --verify, kafka-log-dirs --describe, and last kafka-topics
# --describe through a failover (the leader SIGKILLed: Leader and Isr change).
#
#   bash compat/cluster/clients.sh
#
# Left out, and why: `metadata` and `describe-list-groups` assert one
# broker; `admin-topics` of kafkajs and Python checks the data dir of its
# own single broker.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$HERE/../lib/cluster.sh"
[ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }
start_cluster --num-partitions 1 --set default.replication.factor=3 \
    --set group.initial.rebalance.delay.ms=0 --log-level "${STROM_LOG_LEVEL:-info}"
trap stop_cluster EXIT
status=0
STROM_EXTERNAL_BOOTSTRAP=$STROM_CLUSTER_BOOTSTRAP STROM_CLIENT_LABEL=java-3-nodes \
    bash "$HERE/../java/run.sh" admin-topics describe-configs keyed-order headers-timestamps-nulls \
    compression-gzip compression-snappy compression-lz4 compression-zstd idempotent \
    group-commit-resume group-rebalance offsets-for-times \
    txn-commit txn-abort txn-fencing txn-consume-transform-produce || status=$?
# The same scenarios with kafkajs and the three Python clients.
STROM_EXTERNAL_BOOTSTRAP=$STROM_CLUSTER_BOOTSTRAP STROM_CLIENT_SUFFIX=-3-nodes \
    bash "$HERE/../kafkajs/run.sh" keyed-order headers-timestamps-nulls compression-gzip \
    compression-snappy compression-lz4 compression-zstd idempotent group-commit-resume \
    group-rebalance offsets-for-times describe-configs txn-commit txn-abort \
    txn-consume-transform-produce txn-fencing || status=$?
STROM_EXTERNAL_BOOTSTRAP=$STROM_CLUSTER_BOOTSTRAP STROM_CLIENT_SUFFIX=-3-nodes \
    bash "$HERE/../python/run.sh" -k "not metadata and not admin_topics and not describe_list_groups" ||
    status=$?

# result SCENARIO OK DETAIL: one RESULT line; a failure fails the suite.
result() {
    if [ "$2" = 0 ]; then echo "RESULT kafka-cli-3-nodes $1 PASS"
    else echo "RESULT kafka-cli-3-nodes $1 FAIL $3"; status=1; fi
}
source "$HERE/../lib/kafka.sh"
set +e  # each scenario reports its own failure
if kafka_dist; then
    K=$KAFKA_HOME/bin
    B=$STROM_CLUSTER_BOOTSTRAP
    out=$STROM_CLUSTER_DIR/cli.out
    "$K/kafka-topics.sh" --bootstrap-server "$B" --create --topic cli-admin \
        --partitions 3 --replication-factor 3 >/dev/null 2>&1 || true
    "$K/kafka-topics.sh" --bootstrap-server "$B" --create --topic cli-moving \
        --replica-assignment 1:2 >/dev/null 2>&1 || true
    # Every partition listed with a leader, three replicas and three in sync
    # (the ISR of a new topic is its replicas).
    "$K/kafka-topics.sh" --bootstrap-server "$B" --describe --topic cli-admin >"$out" 2>&1
    ok=$(grep -cE 'Partition: [0-2]\s+Leader: [1-3]\s+Replicas: [1-3],[1-3],[1-3]\s+Isr: [1-3],[1-3],[1-3]' "$out" || true)
    result topics-describe "$([ "$ok" = 3 ] && echo 0 || echo 1)" "$(tr '\n' ' ' <"$out")"
    "$K/kafka-metadata-quorum.sh" --bootstrap-server "$B" describe --status >"$out" 2>&1
    ok=$(grep -cE '^(LeaderId: +[1-3]|CurrentVoters: +\[.*"id": 1.*"id": 2.*"id": 3)' "$out" || true)
    result metadata-quorum-status "$([ "$ok" = 2 ] && echo 0 || echo 1)" "$(tr '\n' ' ' <"$out")"
    "$K/kafka-metadata-quorum.sh" --bootstrap-server "$B" describe --replication >"$out" 2>&1
    ok=$(grep -cE '^[1-3] .*(Leader|Follower)' "$out" || true)
    result metadata-quorum-replication "$([ "$ok" = 3 ] && echo 0 || echo 1)" "$(tr '\n' ' ' <"$out")"
    # Partition 0 is led by its preferred replica: nothing to elect.
    "$K/kafka-leader-election.sh" --bootstrap-server "$B" --election-type preferred \
        --topic cli-admin --partition 0 >"$out" 2>&1
    grep -q "Valid replica already elected for partitions cli-admin-0" "$out"
    result leader-election-preferred $? "$(tr '\n' ' ' <"$out")"
    # cli-moving-0 from [1, 2] to [3, 2]: node 3 catches up, node 1 leaves.
    plan=$STROM_CLUSTER_DIR/plan.json
    echo '{"version":1,"partitions":[{"topic":"cli-moving","partition":0,"replicas":[3,2]}]}' >"$plan"
    "$K/kafka-reassign-partitions.sh" --bootstrap-server "$B" --execute \
        --reassignment-json-file "$plan" >"$out" 2>&1
    rc=$?
    deadline=$((SECONDS + 60))
    until [ $rc -ne 0 ] || grep -q "Reassignment of partition cli-moving-0 is completed" "$out" \
        || [ $SECONDS -ge $deadline ]; do
        "$K/kafka-reassign-partitions.sh" --bootstrap-server "$B" --verify \
            --reassignment-json-file "$plan" >"$out" 2>&1 || true
        sleep 0.5
    done
    "$K/kafka-topics.sh" --bootstrap-server "$B" --describe --topic cli-moving >>"$out" 2>&1
    grep -q "Reassignment of partition cli-moving-0 is completed" "$out" &&
        grep -qE 'Replicas: 3,2\s+Isr: (3,2|2,3)' "$out"
    result reassign-partitions $? "$(tr '\n' ' ' <"$out")"
    "$K/kafka-log-dirs.sh" --bootstrap-server "$B" --describe --topic-list cli-admin >"$out" 2>&1
    ok=$(grep -o '"partition":"cli-admin-[0-2]"' "$out" | wc -l)
    result log-dirs-describe "$([ "$ok" = 9 ] && echo 0 || echo 1)" "$(tr '\n' ' ' <"$out")"
    # Last (it stops a node): the leader of cli-admin-0 SIGKILLed; after
    # broker.session.timeout.ms the controller fences it, and
    # kafka-topics --describe shows another leader and an ISR without it.
    "$K/kafka-topics.sh" --bootstrap-server "$B" --describe --topic cli-admin >"$out" 2>&1
    before=$(grep -E 'Partition: 0\s' "$out")
    old_leader=$(sed -nE 's/.*Partition: 0\s+Leader: ([0-9]+).*/\1/p' "$out")
    if [ -n "$old_leader" ]; then
        kill -KILL "${STROM_CLUSTER_PIDS[$((old_leader - 1))]}" 2>/dev/null
        survivors=$(tr ',' '\n' <<<"$B" | sed -n "$(( old_leader % 3 + 1 ))p")
        deadline=$((SECONDS + 60))
        moved=1
        while [ $SECONDS -lt $deadline ]; do
            "$K/kafka-topics.sh" --bootstrap-server "$survivors" --describe --topic cli-admin >"$out" 2>&1
            after=$(grep -E 'Partition: 0\s' "$out")
            new_leader=$(sed -nE 's/.*Partition: 0\s+Leader: ([0-9]+).*/\1/p' "$out")
            isr=$(sed -nE 's/.*Partition: 0\s.*Isr: ([0-9,]+).*/\1/p' "$out")
            if [ -n "$new_leader" ] && [ "$new_leader" != "$old_leader" ] &&
                [[ ",$isr," != *",$old_leader,"* ]]; then
                moved=0; break
            fi
            sleep 0.5
        done
        result topics-describe-failover $moved "before: $before / after: $after"
        [ $moved -ne 0 ] || echo "    leader $old_leader SIGKILLed: before [$(echo $before)] after [$(echo $after)]"
    else
        result topics-describe-failover 1 "no leader in: $(tr '\n' ' ' <"$out")"
    fi
else
    echo "RESULT kafka-cli-3-nodes all SKIP no Kafka distribution in ../shared/kafka"
fi
set -e

if [ "$status" -ne 0 ]; then
    for id in 1 2 3; do echo "--- node $id (last 50 lines)"; tail -n 50 "$STROM_CLUSTER_DIR/node-$id.log"; done
fi
exit "$status"
