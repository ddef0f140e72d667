# Shared by the suites that run against a three-node strom cluster: start
# and stop three release `strom` processes on loopback (own client and
# controller ports, own data dirs) sharing `controller.quorum.voters`.
#
#   source compat/lib/cluster.sh
#   start_cluster [extra strom flags...]   # sets STROM_CLUSTER_BOOTSTRAP, STROM_CLUSTER_DIR
#   ...                                    # run clients against $STROM_CLUSTER_BOOTSTRAP
#   stop_cluster                           # SIGTERM all three, wait, remove the dirs
#
# Each node logs to $STROM_CLUSTER_DIR/node-N.log; start_cluster waits for
# every node's "strom started" line (they need each other: a quorum).

source "$(dirname "${BASH_SOURCE[0]}")/broker.sh"

STROM_CLUSTER_PIDS=()

start_cluster() {
    STROM_CLUSTER_DIR=$(mktemp -d)
    local voters=() clients=() id
    for id in 1 2 3; do
        voters+=("$id@127.0.0.1:$(free_port)")
        clients+=("127.0.0.1:$(free_port)")
    done
    local joined
    joined=$(IFS=,; echo "${voters[*]}")
    for id in 1 2 3; do
        "$STROM_BIN" --node-id "$id" --listen "${clients[$((id - 1))]}" \
            --data-dir "$STROM_CLUSTER_DIR/node-$id" \
            --set "controller.quorum.voters=$joined" "$@" \
            >"$STROM_CLUSTER_DIR/node-$id.log" 2>&1 &
        STROM_CLUSTER_PIDS+=($!)
    done
    local deadline=$((SECONDS + 60))
    for id in 1 2 3; do
        until grep -q "strom started" "$STROM_CLUSTER_DIR/node-$id.log" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then
                echo "node $id did not start:"; cat "$STROM_CLUSTER_DIR/node-$id.log"; return 1
            fi
            sleep 0.05
        done
    done
    STROM_CLUSTER_BOOTSTRAP=$(IFS=,; echo "${clients[*]}")
    export STROM_CLUSTER_BOOTSTRAP STROM_CLUSTER_DIR
}

stop_cluster() {
    local pid
    for pid in "${STROM_CLUSTER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${STROM_CLUSTER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    STROM_CLUSTER_PIDS=()
    [ -z "${STROM_CLUSTER_DIR:-}" ] || rm -rf "$STROM_CLUSTER_DIR"
}
