#!/usr/bin/env bash
# The Java client's scenarios against a three-node strom cluster (every
# node in the bootstrap list; auto-created topics get replication factor
# 3, the scenarios' own topics the factor they ask for; partition leaders
# and group coordinators spread over the three brokers). RESULT lines say
# `java-3-nodes`.
#
#   bash compat/cluster/clients.sh
#
# Left out, and why: `metadata` and `describe-list-groups` assert one
# broker.
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
if [ "$status" -ne 0 ]; then
    for id in 1 2 3; do echo "--- node $id (last 50 lines)"; tail -n 50 "$STROM_CLUSTER_DIR/node-$id.log"; done
fi
exit "$status"
