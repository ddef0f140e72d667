#!/usr/bin/env bash
# librdkafka's own integration test suite (tests/ of the Debian source
# package, librdkafka 2.0.2) against strom.
#
#   compat/librdkafka/run.sh            # setup if needed, run allowlist.txt
#   compat/librdkafka/run.sh 0012 0081  # run only these allowlist entries
#   LRK_PHASES=sasl_ssl,ssl compat/librdkafka/run.sh   # only the TLS/SASL entries
#   LRK_SECURITY_TARGET=kafka LRK_PHASES=sasl_ssl,ssl compat/librdkafka/run.sh  # them against Kafka 4.1
#
# Environment:
#   STROM_CACHE   cache root (default ~/.cache/strom); the suite is built in
#                 $STROM_CACHE/librdkafka, logs go to .../librdkafka/logs
#   LRK_JOBS      test-runner processes run at once (default 2: more makes
#                 the suite's timing-sensitive tests flaky on 2 cores)
#   LRK_TIMEOUT   seconds per entry before it is killed (default 240)
#   LRK_ALLOWLIST another allowlist file
#   LRK_DEBUG     librdkafka debug contexts for test.conf (e.g. protocol,broker,cgrp)
#   LRK_BROKER_EXTRA extra strom flags (e.g. "--log-level debug")
#   LRK_PHASES    run only the entries of these phases (comma-separated,
#                 e.g. sasl_ssl,ssl)
#   LRK_SECURITY_TARGET  kafka: the @sasl_ssl and @ssl entries run against
#                 a real Apache Kafka 4.1 (compat/lib/kafka.sh: the
#                 distribution in ../shared/kafka) with the same listeners,
#                 instead of strom (to tell a strom bug from a test's own)
# setup.sh (run first, idempotent) enables deb-src from the machine's apt
# sources, installs librdkafka's build-deps, fetches its source package and
# builds the library, tests/test-runner and the kafka-topics.sh stand-in.
#
# Each allowlist entry runs in its own `test-runner -L -p1 <NNNN>` process
# (-L: skip the broker-less local/mock tests; one process per entry so a
# hang or abort only fails that entry), against one of these brokers:
#   default       --num-partitions 4 --set group.initial.rebalance.delay.ms=0
#   @noautocreate the same with --auto-create-topics false (test scenario
#                 "noautocreate", test-runner -s noautocreate)
#   @delay        --num-partitions 4 with Kafka's default
#                 group.initial.rebalance.delay.ms (3000)
#   @cluster      three nodes (compat/lib/cluster.sh) with the default
#                 flags and default.replication.factor=3
#   @sasl_ssl     one broker started from a server.properties (Kafka's keys)
#                 with PLAINTEXT, SSL and SASL_SSL listeners, num.partitions=4,
#                 group.initial.rebalance.delay.ms=0; the whole suite's
#                 test.conf switched to security.protocol=SASL_SSL,
#                 sasl.mechanism=PLAIN (JAAS user librdkafka), the broker
#                 cert verified against a throwaway CA (openssl, in the run's
#                 log dir), and a client cert as trivup sets one up
#                 (ssl.certificate/key.location and the SSL_* env vars that
#                 0097 reads)
#   @ssl          the same broker's SSL listener, with
#                 listener.name.ssl.ssl.client.auth=required: the client
#                 cert is the login; test.conf security.protocol=SSL
#                 The kafka-topics.sh stand-in reaches that broker over its
#                 PLAINTEXT listener (BROKERS).
# Allowlist line: NNNN [@phase] [KEY=VALUE (env, e.g. SUBTESTS=...)] [-flag] # comment
# Output: one `RESULT librdkafka <NNNN_name>[<subtests>][@sasl_ssl|@ssl] PASS|FAIL [detail]`
# per entry; exit status 1 if any entry failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${STROM_CACHE:-$HOME/.cache/strom}/librdkafka
JOBS=${LRK_JOBS:-2}
TIMEOUT=${LRK_TIMEOUT:-240}
ALLOWLIST=${LRK_ALLOWLIST:-$HERE/allowlist.txt}
# The suite compares against the broker version for a few feature gates;
# strom serves Kafka 4.1's API ranges.
export TEST_KAFKA_VERSION=${TEST_KAFKA_VERSION:-4.1.0}

t_setup=$SECONDS
mkdir -p "$CACHE"
if ! "$HERE/setup.sh" >"$CACHE/setup.log" 2>&1; then
    tail -20 "$CACHE/setup.log"
    echo "setup failed (full log: $CACHE/setup.log)"
    exit 1
fi
SRC=$(tail -1 "$CACHE/setup.log")
TESTS_DIR=$SRC/tests
[ -x "$TESTS_DIR/test-runner" ] || { echo "no test-runner in $TESTS_DIR"; exit 1; }
echo "librdkafka suite ready in $TESTS_DIR ($((SECONDS - t_setup))s)"

if [ ! -x "${STROM_BIN:-$HERE/../../target/release/strom}" ]; then
    (cd "$HERE/../.." && cargo build --release 2>&1 | tail -1)
fi
# shellcheck source=../lib/cluster.sh
source "$HERE/../lib/cluster.sh"
# shellcheck source=../lib/kafka.sh
source "$HERE/../lib/kafka.sh"
# shellcheck source=../lib/tls.sh
source "$HERE/../lib/tls.sh"
SECURITY_TARGET=${LRK_SECURITY_TARGET:-strom}
case $SECURITY_TARGET in strom | kafka) ;; *) echo "LRK_SECURITY_TARGET must be strom or kafka"; exit 2 ;; esac

LOGS=$CACHE/logs/$(date +%Y%m%d-%H%M%S)
mkdir -p "$LOGS"
ln -sfn "$LOGS" "$CACHE/logs/latest"

# --- brokers -----------------------------------------------------------
declare -A BOOT PID DATA
BROKER_FLAGS_default="--num-partitions 4 --set group.initial.rebalance.delay.ms=0"
BROKER_FLAGS_noautocreate="$BROKER_FLAGS_default --auto-create-topics false"
BROKER_FLAGS_delay="--num-partitions 4"
BROKER_FLAGS_cluster="$BROKER_FLAGS_default --set default.replication.factor=3"

# --- the @sasl_ssl / @ssl broker ------------------------------------------
# make_certs DIR: a throwaway CA; the broker's PEM keystore (key + cert
# O=strom,CN=localhost with SAN IP:127.0.0.1, DNS:localhost + CA); the
# client's files as trivup's SslApp makes them (key and cert in PEM and
# DER, a PKCS#12 of key, cert and CA with password $SSL_PASSWORD) and a PEM
# of two CAs (0097 reads it as SSL_all_cas_pem).
SSL_PASSWORD=lrk-p12-secret
make_certs() {
    mkdir -p "$1" && cd "$1" || return 1
    tls_ca ca && openssl x509 -outform der -in ca.pem -out ca.der || return 1
    tls_ca other-ca && cat other-ca.pem ca.pem >all-cas.pem || return 1
    tls_cert ca broker "/O=strom/CN=localhost" server || return 1
    tls_cert ca client "/O=strom/CN=librdkafka" client || return 1
    cp client.key client-priv.pem && cp client.crt client-pub.pem || return 1
    openssl x509 -outform der -in client-pub.pem -out client-pub.der || return 1
    openssl rsa -outform der -in client-priv.pem -out client-priv.der || return 1
    openssl pkcs12 -export -in client-pub.pem -inkey client-priv.pem -certfile ca.pem -name librdkafka \
        -passout "pass:$SSL_PASSWORD" -out client.pfx || return 1
}

# start_security_broker: once, for both phases: strom (or, with
# LRK_SECURITY_TARGET=kafka, Apache Kafka 4.1) with PLAINTEXT, SSL and
# SASL_SSL listeners on free loopback ports. Sets SEC_PLAINTEXT, SEC_SSL,
# SEC_SASL_SSL, CERTS.
start_security_broker() {
    [ -n "${PID[security]:-}" ] && return 0
    CERTS=$LOGS/certs
    (make_certs "$CERTS") >"$LOGS/openssl.log" 2>&1 || { echo "openssl failed:"; cat "$LOGS/openssl.log"; return 1; }
    local h=127.0.0.1 p_plain p_ssl p_sasl props=$LOGS/server.properties listeners state
    p_plain=$(free_port) p_ssl=$(free_port) p_sasl=$(free_port)
    SEC_PLAINTEXT=$h:$p_plain SEC_SSL=$h:$p_ssl SEC_SASL_SSL=$h:$p_sasl
    listeners="PLAINTEXT://$SEC_PLAINTEXT,SSL://$SEC_SSL,SASL_SSL://$SEC_SASL_SSL"
    {
        one_node_props "$SECURITY_TARGET" "$listeners" PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL \
            "$LOGS/$SECURITY_TARGET"
        cat <<PROPS
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
num.partitions=4
group.initial.rebalance.delay.ms=0
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.ssl.ssl.client.auth=required
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_librdkafka="librdkafka-secret";
PROPS
    } >"$props"
    if [ "$SECURITY_TARGET" = kafka ]; then
        kafka_dist || { echo "LRK_SECURITY_TARGET=kafka: no Kafka distribution ($KAFKA_TARBALL)"; return 1; }
        state=$LOGS/kafka
    else
        state=$(mktemp -d)
    fi
    # shellcheck disable=SC2086
    start_one_node "$SECURITY_TARGET" "$props" "$state" ${LRK_BROKER_EXTRA:-} || return 1
    if [ "$SECURITY_TARGET" = kafka ]; then
        PID[security]=kafka DATA[security]=$KAFKA_STATE
    else
        PID[security]=$BROKER_PID DATA[security]=$state
    fi
}

start_phase_broker() {
    local phase=$1 flags_var="BROKER_FLAGS_$1"
    if [ "$phase" = sasl_ssl ] || [ "$phase" = ssl ]; then
        start_security_broker || return 1
        local conf=$LOGS/test-$phase.conf
        if [ "$phase" = sasl_ssl ]; then
            BOOT[$phase]=$SEC_SASL_SSL
            printf '%s\n' "bootstrap.servers=$SEC_SASL_SSL" "security.protocol=SASL_SSL" "sasl.mechanism=PLAIN" \
                "sasl.username=librdkafka" "sasl.password=librdkafka-secret" >"$conf"
        else
            BOOT[$phase]=$SEC_SSL
            printf '%s\n' "bootstrap.servers=$SEC_SSL" "security.protocol=SSL" >"$conf"
        fi
        # As trivup's LibrdkafkaTestApp writes them for an SSL cluster.
        printf '%s\n' "ssl.ca.location=$CERTS/ca.pem" "ssl.certificate.location=$CERTS/client-pub.pem" \
            "ssl.key.location=$CERTS/client-priv.pem" "ssl.key.password=$SSL_PASSWORD" >>"$conf"
        [ -n "${LRK_DEBUG:-}" ] && printf 'debug=%s\n' "$LRK_DEBUG" >>"$conf"
        # Environment of the phase's test-runners: the stand-in's broker
        # (BROKERS) and trivup's SSL_* names of the cert files.
        printf '%s\n' "BROKERS=$SEC_PLAINTEXT" "SSL_ca_pem=$CERTS/ca.pem" "SSL_ca_der=$CERTS/ca.der" \
            "SSL_all_cas_pem=$CERTS/all-cas.pem" "SSL_pub_pem=$CERTS/client-pub.pem" \
            "SSL_pub_der=$CERTS/client-pub.der" "SSL_priv_pem=$CERTS/client-priv.pem" \
            "SSL_priv_der=$CERTS/client-priv.der" "SSL_pkcs=$CERTS/client.pfx" \
            "SSL_password=$SSL_PASSWORD" >"$LOGS/env-$phase"
        return 0
    fi
    if [ "$phase" = cluster ]; then
        # shellcheck disable=SC2086
        start_cluster ${!flags_var} ${LRK_BROKER_EXTRA:-} || return 1
        BOOT[$phase]=$STROM_CLUSTER_BOOTSTRAP PID[$phase]=cluster DATA[$phase]=$STROM_CLUSTER_DIR
    else
        # shellcheck disable=SC2086
        start_broker ${!flags_var} ${LRK_BROKER_EXTRA:-} || return 1
        BOOT[$phase]=$STROM_BOOTSTRAP PID[$phase]=$STROM_PID DATA[$phase]=$STROM_DATA
    fi
    printf 'bootstrap.servers=%s\n' "${BOOT[$phase]}" >"$LOGS/test-$phase.conf"
    if [ -n "${LRK_DEBUG:-}" ]; then
        printf 'debug=%s\n' "$LRK_DEBUG" >>"$LOGS/test-$phase.conf"
    fi
}

stop_all() {
    local phase
    for phase in "${!PID[@]}"; do
        if [ "$phase" = cluster ]; then
            for id in 1 2 3; do
                cp "${DATA[$phase]}/node-$id.log" "$LOGS/strom-cluster-node-$id.log" 2>/dev/null || true
            done
            stop_cluster
            continue
        fi
        if [ "$phase" = security ]; then
            if [ "${PID[$phase]}" = kafka ]; then
                kafka_terminate
                rm -rf "${DATA[$phase]}/data"
            else
                kill -TERM "${PID[$phase]}" 2>/dev/null
                wait "${PID[$phase]}" 2>/dev/null
                cp "${DATA[$phase]}/strom.log" "$LOGS/strom-security.log" 2>/dev/null || true
                rm -rf "${DATA[$phase]}"
            fi
            continue
        fi
        STROM_PID=${PID[$phase]} STROM_DATA=${DATA[$phase]}
        cp "$STROM_DATA/strom.log" "$LOGS/strom-$phase.log" 2>/dev/null || true
        stop_broker
    done
    PID=()
    # test-runner leaves one stats file per test in its working directory.
    rm -f "$TESTS_DIR"/stats_*.json
}
trap stop_all EXIT
# offset.store.method=file tests (0014) keep offsets in <topic>-<partition>.offset
# files there too. Their "random" topic names do repeat across runs, and a
# stale file makes a consumer start at an old stored offset: start clean.
rm -f "$TESTS_DIR"/*.offset

# --- entries -------------------------------------------------------------
# entries.txt: one line per entry: phase<TAB>number<TAB>env...<TAB>flags...
ENTRIES=$LOGS/entries.txt
: >"$ENTRIES"
while IFS= read -r line; do
    line=${line%%#*}
    read -r -a tok <<<"$line"
    [ ${#tok[@]} -gt 0 ] || continue
    num=${tok[0]} phase=default envs="" flags=""
    for t in "${tok[@]:1}"; do
        case $t in
            @*) phase=${t#@} ;;
            -*) flags="$flags $t" ;;
            *=*) envs="$envs $t" ;;
        esac
    done
    if [ $# -gt 0 ] && [[ " $* " != *" $num "* ]]; then continue; fi
    if [ -n "${LRK_PHASES:-}" ] && [[ ",$LRK_PHASES," != *",$phase,"* ]]; then continue; fi
    printf '%s\t%s\t%s\t%s\n' "$phase" "$num" "${envs# }" "${flags# }" >>"$ENTRIES"
done <"$ALLOWLIST"

for phase in $(cut -f1 "$ENTRIES" | sort -u); do
    start_phase_broker "$phase" || exit 1
    echo "broker $phase on ${BOOT[$phase]}"
done

# run_entry PHASE NUM ENVS FLAGS: one test-runner process, one RESULT line.
run_entry() {
    local phase=$1 num=$2 envs=$3 flags=$4
    local tag=$num
    [ -n "$envs" ] && tag="$num[${envs//SUBTESTS=/}]"
    [ "$phase" = sasl_ssl ] || [ "$phase" = ssl ] && tag="$tag@$phase"
    local log=$LOGS/$num${envs:+-${envs//[^A-Za-z0-9_]/_}}.log
    [ "$phase" = sasl_ssl ] || [ "$phase" = ssl ] && log=${log%.log}-$phase.log
    local brokers phase_env=()
    brokers=$(sed -n 's/^bootstrap.servers=//p' "$LOGS/test-$phase.conf")
    if [ -f "$LOGS/env-$phase" ]; then
        mapfile -t phase_env <"$LOGS/env-$phase"
    fi
    local scen=default
    [ "$phase" = noautocreate ] && scen=noautocreate
    local start=$SECONDS rc
    # (the outer braces catch bash's "Aborted"/"Killed" job notices)
    { (
        cd "$TESTS_DIR" || exit 99
        # shellcheck disable=SC2086
        env LD_LIBRARY_PATH="../src:../src-cpp" \
            RDKAFKA_TEST_CONF="$LOGS/test-$phase.conf" \
            KAFKA_PATH="$KAFKA_SHIM" \
            BROKERS="$brokers" "${phase_env[@]}" \
            $envs \
            timeout -k 10 "$TIMEOUT" ./test-runner -L -p1 -s "$scen" $flags "$num"
    ) >"$log" 2>&1; rc=$?; } 2>>"$log"
    # The summary table lists every test of this number: name | state | time.
    local table name ran passed failed
    table=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | awk -F'|' '/^\|/ && NF >= 4 {
        gsub(/^ +| +$/, "", $2); gsub(/^ +| +$/, "", $3); gsub(/^ +|s? *$/, "", $4);
        print $2 "\t" $3 "\t" $4 }' | grep -v '^<MAIN>')
    # Named after the test of this number that ran longest (a number can
    # hold several tests; SUBTESTS= leaves the others running empty).
    ran=$(printf '%s\n' "$table" | awk -F'\t' '$2 == "PASSED" || $2 == "FAILED" { print $3 "\t" $1 }' |
        sort -t$'\t' -k1,1gr | head -1 | cut -f2)
    passed=$(printf '%s\n' "$table" | grep -c $'\tPASSED\t')
    failed=$(printf '%s\n' "$table" | grep -c $'\tFAILED\t')
    name=${ran:-$(sed -n 's/.*Running test \([0-9][0-9][0-9][0-9]_[A-Za-z0-9_]*\).*/\1/p' "$log" | head -1)}
    name=${name:-$num}
    tag=${tag/$num/$name}
    local secs=$((SECONDS - start)) detail
    if [ $rc -eq 0 ] && [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]; then
        result librdkafka "$tag" PASS "(${secs}s)"
    else
        if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
            detail="timed out after ${secs}s"
        elif [ $rc -eq 0 ] && [ "$passed" -eq 0 ]; then
            detail="nothing ran: $(printf '%s\n' "$table" | cut -f2 | sort -u | tr '\n' ' ')"
        else
            detail=$(sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -a -A1 '^### Test' | grep -av '^###\|^--' | head -1 | cut -c1-200)
            detail="rc=$rc ${secs}s: ${detail:-see log}"
        fi
        result librdkafka "$tag" FAIL "$detail (log: $log)"
    fi
}
export -f run_entry result
# KAFKA_PATH/bin/kafka-topics.sh is setup.sh's stand-in (kafka-topics.c).
KAFKA_SHIM=$CACHE/kafka-shim
export LOGS TESTS_DIR TIMEOUT TEST_KAFKA_VERSION KAFKA_SHIM

t_run=$SECONDS
tr '\t' '\037' <"$ENTRIES" |
    xargs -d '\n' -P "$JOBS" -I{} bash -c 'IFS=$'"'"'\037'"'"' read -r p n e f <<<"$1"; run_entry "$p" "$n" "$e" "$f"' _ {} |
    tee "$LOGS/results.txt"

total=$(grep -c '^RESULT' "$LOGS/results.txt")
fails=$(grep -c '^RESULT .* FAIL' "$LOGS/results.txt")
echo "librdkafka suite: $((total - fails))/$total entries passed in $((SECONDS - t_run))s (logs: $LOGS)"
[ "$fails" -eq 0 ]
