# Shared by the compat suites and scripts/bench.sh: the Apache Kafka 4.1.0
# distribution from ../shared/kafka beside the repo, unpacked once into a
# cache dir (never into the repo), and a one-node KRaft Kafka on loopback.
#
#   source compat/lib/kafka.sh
#   kafka_dist || skip...             # sets KAFKA_HOME; returns 1 when the tarball is missing
#   start_kafka [key=value...]        # sets KAFKA_BOOTSTRAP, KAFKA_PID, KAFKA_STATE
#   stop_kafka                        # SIGTERM, wait (SIGKILL after 30 s), remove the state dir
#   start_kafka_cluster [key=value...] # three nodes: KAFKA_BOOTSTRAP, KAFKA_NODE_PIDS, KAFKA_STATE
#   stop_kafka_cluster
#   one_node_props strom|kafka LISTENERS PROTOCOLS STATE   # server.properties head, either broker
#   start_one_node strom|kafka PROPS STATE [strom flags]  # BROKER_LOG, BROKER_PID
#
# Needs STROM_ROOT (compat/lib/broker.sh sets it) and free_port from broker.sh.

KAFKA_VERSION_DIR=kafka_2.13-4.1.0
KAFKA_TARBALL=${KAFKA_TARBALL:-$STROM_ROOT/../shared/kafka/$KAFKA_VERSION_DIR.tgz}
KAFKA_CACHE=${STROM_CACHE:-$HOME/.cache/strom}/kafka

# kafka_dist: unpack the distribution into the cache when it is not there
# yet; KAFKA_HOME points at it. Returns 1 when there is no tarball.
kafka_dist() {
    KAFKA_HOME=$KAFKA_CACHE/$KAFKA_VERSION_DIR
    if [ -x "$KAFKA_HOME/bin/kafka-server-start.sh" ] && [ -f "$KAFKA_HOME/.unpacked" ]; then
        export KAFKA_HOME
        return 0
    fi
    [ -f "$KAFKA_TARBALL" ] || return 1
    mkdir -p "$KAFKA_CACHE"
    local tmp
    tmp=$(mktemp -d "$KAFKA_CACHE/unpack.XXXXXX")
    tar xzf "$KAFKA_TARBALL" -C "$tmp" || { rm -rf "$tmp"; return 1; }
    rm -rf "$KAFKA_HOME"
    mv "$tmp/$KAFKA_VERSION_DIR" "$KAFKA_HOME"
    rm -rf "$tmp"
    touch "$KAFKA_HOME/.unpacked"
    export KAFKA_HOME
}

# start_kafka [key=value...]: a fresh one-node KRaft Kafka (broker and
# controller in one process) on free loopback ports; extra server.properties
# lines as arguments. Waits (60 s deadline) for "Kafka Server started".
start_kafka() {
    KAFKA_STATE=$(mktemp -d "${TMPDIR:-/tmp}/strom-kafka.XXXXXX")
    local port cport kv
    port=$(free_port)
    cport=$(free_port)
    KAFKA_BOOTSTRAP=127.0.0.1:$port
    cat >"$KAFKA_STATE/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_STATE/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS
    for kv in "$@"; do echo "$kv" >>"$KAFKA_STATE/server.properties"; done
    "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)" \
        -c "$KAFKA_STATE/server.properties" >"$KAFKA_STATE/format.log" 2>&1 ||
        { echo "kafka-storage.sh format failed:"; cat "$KAFKA_STATE/format.log"; return 1; }
    _kafka_launch
}

# restart_kafka: start the stopped Kafka again on the same state and ports.
restart_kafka() { _kafka_launch; }

_kafka_launch() {
    : >"$KAFKA_STATE/kafka.out"
    LOG_DIR=$KAFKA_STATE/logs KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:-"-Xmx1G -Xms512m"} \
        "$KAFKA_HOME/bin/kafka-server-start.sh" "$KAFKA_STATE/server.properties" >"$KAFKA_STATE/kafka.out" 2>&1 &
    KAFKA_PID=$!
    export KAFKA_BOOTSTRAP KAFKA_PID KAFKA_STATE
    local deadline=$((SECONDS + 60))
    until grep -q "Kafka Server started" "$KAFKA_STATE/kafka.out" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$KAFKA_PID" 2>/dev/null; then
            echo "Kafka did not start within 60 s:"; tail -n 50 "$KAFKA_STATE/kafka.out"; return 1
        fi
        sleep 0.1
    done
}

# kafka_terminate: SIGTERM, wait for the exit (30 s deadline, then SIGKILL).
# Keeps the state dir (restart_kafka starts from it).
kafka_terminate() {
    [ -n "${KAFKA_PID:-}" ] || return 0
    kill -TERM "$KAFKA_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$KAFKA_PID" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "Kafka did not exit within 30 s of SIGTERM; killed" >&2
            kill -KILL "$KAFKA_PID" 2>/dev/null || true
            break
        fi
        sleep 0.1
    done
    wait "$KAFKA_PID" 2>/dev/null || true
    KAFKA_PID=
}

stop_kafka() {
    kafka_terminate
    [ -n "${KAFKA_STATE:-}" ] && rm -rf "$KAFKA_STATE"
    KAFKA_STATE=
}

# start_kafka_cluster [key=value...]: three fresh KRaft Kafka nodes
# (broker and controller each, node ids 1-3, one voter list) on free
# loopback ports, each with its own state dir; extra server.properties
# lines for all three. Sets KAFKA_BOOTSTRAP (all three), KAFKA_NODE_PIDS
# (node id - 1 -> pid of its JVM) and KAFKA_STATE. Waits (120 s deadline)
# for every node's "Kafka Server started".
start_kafka_cluster() {
    KAFKA_STATE=$(mktemp -d "${TMPDIR:-/tmp}/strom-kafka3.XXXXXX")
    KAFKA_NODE_PIDS=()
    local ports=() cports=() voters=() id kv cluster_id dir
    for id in 1 2 3; do
        ports+=("$(free_port)")
        cports+=("$(free_port)")
        voters+=("$id@127.0.0.1:${cports[$((id - 1))]}")
    done
    cluster_id=$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)
    for id in 1 2 3; do
        dir=$KAFKA_STATE/node-$id
        mkdir -p "$dir"
        cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://127.0.0.1:${ports[$((id - 1))]},CONTROLLER://127.0.0.1:${cports[$((id - 1))]}
advertised.listeners=PLAINTEXT://127.0.0.1:${ports[$((id - 1))]}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
group.initial.rebalance.delay.ms=0
PROPS
        for kv in "$@"; do echo "$kv" >>"$dir/server.properties"; done
        "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$cluster_id" -c "$dir/server.properties" \
            >"$dir/format.log" 2>&1 ||
            { echo "kafka-storage.sh format failed (node $id):"; cat "$dir/format.log"; return 1; }
    done
    for id in 1 2 3; do
        dir=$KAFKA_STATE/node-$id
        # kafka-server-start.sh execs java: $! is the JVM.
        LOG_DIR=$dir/logs KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:-"-Xmx1G -Xms512m"} \
            "$KAFKA_HOME/bin/kafka-server-start.sh" "$dir/server.properties" >"$dir/kafka.out" 2>&1 &
        KAFKA_NODE_PIDS+=($!)
    done
    local deadline=$((SECONDS + 120))
    for id in 1 2 3; do
        dir=$KAFKA_STATE/node-$id
        until grep -q "Kafka Server started" "$dir/kafka.out" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ] || ! kill -0 "${KAFKA_NODE_PIDS[$((id - 1))]}" 2>/dev/null; then
                echo "Kafka node $id did not start within 120 s:"; tail -n 50 "$dir/kafka.out"; return 1
            fi
            sleep 0.2
        done
    done
    KAFKA_BOOTSTRAP=$(printf '127.0.0.1:%s,' "${ports[@]}")
    KAFKA_BOOTSTRAP=${KAFKA_BOOTSTRAP%,}
    export KAFKA_BOOTSTRAP KAFKA_STATE
}

# stop_kafka_cluster: SIGTERM every node still running, wait (SIGKILL
# after 30 s), remove the state dirs.
stop_kafka_cluster() {
    local pid deadline
    for pid in "${KAFKA_NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    deadline=$((SECONDS + 30))
    for pid in "${KAFKA_NODE_PIDS[@]}"; do
        while kill -0 "$pid" 2>/dev/null; do
            if [ $SECONDS -ge $deadline ]; then kill -KILL "$pid" 2>/dev/null || true; break; fi
            sleep 0.1
        done
        wait "$pid" 2>/dev/null || true
    done
    KAFKA_NODE_PIDS=()
    [ -n "${KAFKA_STATE:-}" ] && rm -rf "$KAFKA_STATE"
    KAFKA_STATE=
}

# one_node_props TARGET LISTENERS PROTOCOLS STATE: the first lines of a
# one-node broker's server.properties for strom (TARGET strom) or Kafka
# (TARGET kafka): node.id, listeners and listener.security.protocol.map as
# given; Kafka also gets KRaft's process.roles, a PLAINTEXT CONTROLLER
# listener on a free port, log.dirs=STATE/data and the share coordinator's
# one-node settings. The caller appends the rest.
one_node_props() {
    local target=$1 listeners=$2 protocols=$3 state=$4 ctl
    echo "node.id=1"
    if [ "$target" = kafka ]; then
        ctl=127.0.0.1:$(free_port)
        echo "process.roles=broker,controller"
        echo "controller.quorum.voters=1@$ctl"
        echo "controller.listener.names=CONTROLLER"
        echo "listeners=$listeners,CONTROLLER://$ctl"
        echo "listener.security.protocol.map=$protocols,CONTROLLER:PLAINTEXT"
        echo "log.dirs=$state/data"
        echo "share.coordinator.state.topic.replication.factor=1"
        echo "share.coordinator.state.topic.min.isr=1"
    else
        echo "listeners=$listeners"
        echo "listener.security.protocol.map=$protocols"
    fi
}

# start_one_node TARGET PROPS STATE [strom flags...]: starts the broker
# PROPS describes in the state dir STATE: Kafka (KAFKA_HOME set by
# kafka_dist) formatted and launched there (KAFKA_STATE=STATE; KAFKA_OPTS
# as the caller exports it), or strom with its data in STATE/data. Sets
# BROKER_LOG and BROKER_PID. Returns 1, the log's tail printed, when the
# broker does not start (strom: 30 s; Kafka: _kafka_launch's 60 s).
start_one_node() {
    local target=$1 props=$2 state=$3 deadline
    shift 3
    mkdir -p "$state"
    if [ "$target" = kafka ]; then
        KAFKA_STATE=$state
        cp "$props" "$KAFKA_STATE/server.properties"
        "$KAFKA_HOME/bin/kafka-storage.sh" format -t "$("$KAFKA_HOME/bin/kafka-storage.sh" random-uuid)" \
            -c "$KAFKA_STATE/server.properties" >"$KAFKA_STATE/format.log" 2>&1 ||
            { echo "kafka-storage.sh format failed:"; cat "$KAFKA_STATE/format.log"; return 1; }
        _kafka_launch || return 1
        BROKER_LOG=$KAFKA_STATE/kafka.out BROKER_PID=$KAFKA_PID
        return 0
    fi
    BROKER_LOG=$state/strom.log
    "$STROM_BIN" --config "$props" --data-dir "$state/data" "$@" >"$BROKER_LOG" 2>&1 &
    BROKER_PID=$!
    deadline=$((SECONDS + 30))
    until grep -q "strom started" "$BROKER_LOG" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "strom did not start:"; tail -n 20 "$BROKER_LOG"
            kill -KILL "$BROKER_PID" 2>/dev/null
            return 1
        fi
        sleep 0.05
    done
}
