#!/usr/bin/env bash
# ACLs (Kafka's StandardAuthorizer semantics) with stock clients, and TLS
# certificate reload.
#
#   bash compat/security/acls.sh                      # against the release strom binary (STROM_BIN)
#   SECURITY_TARGET=kafka bash compat/security/acls.sh  # the same against a real Kafka 4.1
#   SECURITY_KEEP=DIR ...   # keeps the certs, server.properties, broker and client logs in DIR
#
# One broker of its own (compat/security/run.sh's is another), on free
# loopback ports, with
#   authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
#   super.users=User:admin;User:ANONYMOUS, allow.everyone.if.no.acl.found=false
# and four listeners (Kafka gets a CONTROLLER one as well):
#   PLAINTEXT       the admin tools (User:ANONYMOUS, a super user)
#   SASL_PLAINTEXT  PLAIN users admin, alice, bob (JAAS config)
#   MTLS            SSL, ssl.client.auth=required, a PEM keystore of its own
#                   (listener.name.mtls.ssl.keystore.*): the principal is the
#                   client certificate's subject, User:CN=alice,OU=eng,O=strom
#   MAPPED          SSL, ssl.client.auth=required,
#                   listener.name.mapped.ssl.principal.mapping.rules=
#                   RULE:^CN=(.*?),OU=.*$/$1/L,DEFAULT: the principal is User:alice
# A throwaway CA, broker certs (SAN IP:127.0.0.1, DNS:localhost) and client
# certs (O=strom/OU=eng/CN=alice and CN=mallory) are made with openssl.
#
# RESULT lines (client names kafka-acls, acls, tls):
#   kafka-acls add-list    Kafka's kafka-acls.sh over PLAINTEXT: --add ALLOW
#                          User:alice Write+Read on topic acl-orders, Read on
#                          group acl-g, a PREFIXED ALLOW User:bob Describe+Read
#                          on acl-; --list names all five bindings
#   kafka-acls remove-list --remove bob's prefixed Describe; --list again
#                          names the four others and not it
#   kafka-acls mtls-principal-add  --add for User:CN=alice,OU=eng,O=strom
#                          (a principal with commas) Write on topic acl-mtls
#   acls *                 compat/security/acls.py (confluent-kafka, compat/python's
#                          venv): alice over SASL_PLAINTEXT produces to
#                          acl-orders, is refused acl-other
#                          (TOPIC_AUTHORIZATION_FAILED), consumes in group
#                          acl-g, is refused group other-g
#                          (GROUP_AUTHORIZATION_FAILED), lists only acl-orders;
#                          bob reads by the prefixed ACL and cannot write; a
#                          DENY Read for alice refuses her consume until it is
#                          deleted; see acls.py
#   tls mtls-*, mapped-*   the certificate principals on MTLS and MAPPED (acls.py)
#   tls cert-reload        strom: the MTLS keystore file is replaced by one
#                          with a new cert (new serial, OU=reloaded, same CA):
#                          within 10 s new connections (openssl s_client with a
#                          client cert) get it, and a client still produces
#                          over MTLS; MAPPED keeps its own. Kafka reloads
#                          keystores only through a dynamic config change
#                          (kafka-configs.sh --alter on listener.name.*.ssl.*),
#                          not on a file change: "PASS n/a".
# Every client process is bounded by a timeout. The Kafka distribution
# (../shared/kafka, compat/lib/kafka.sh) is needed for both targets (its
# kafka-acls.sh); without it every scenario is "PASS n/a: no Kafka distribution".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/compat/lib/broker.sh"
source "$ROOT/compat/lib/kafka.sh"
source "$ROOT/compat/lib/tls.sh"
source "$ROOT/compat/lib/venv.sh"

TARGET=${SECURITY_TARGET:-strom}
case $TARGET in strom | kafka) ;; *) echo "SECURITY_TARGET must be strom or kafka, not $TARGET"; exit 2 ;; esac
PY_SCENARIOS="alice-produce alice-produce-refused alice-consume alice-group-refused alice-metadata
    bob-prefixed-read bob-write-refused deny-read deny-removed
    mtls-principal mtls-unknown-cert-refused mapped-principal"
started=$SECONDS

if ! kafka_dist; then
    for s in add-list remove-list mtls-principal-add; do result kafka-acls "$s" PASS "n/a: no Kafka distribution"; done
    for s in $PY_SCENARIOS; do result acls "$s" PASS "n/a: no Kafka distribution"; done
    result tls cert-reload PASS "n/a: no Kafka distribution"
    exit 0
fi
[ "$TARGET" = kafka ] || [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }

CACHE=${STROM_CACHE:-$HOME/.cache/strom}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-acls.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
BROKER_PID=
cleanup() {
    if [ "$TARGET" = kafka ]; then
        kafka_terminate
    elif [ -n "$BROKER_PID" ]; then
        kill -TERM "$BROKER_PID" 2>/dev/null
        wait "$BROKER_PID" 2>/dev/null
    fi
    if [ -n "${SECURITY_KEEP:-}" ]; then
        mkdir -p "$SECURITY_KEEP" && cp -r "$WORK"/. "$SECURITY_KEEP"/
        echo "kept the run's files in $SECURITY_KEEP"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# ---- confluent-kafka: compat/python's venv (installed as run.sh does) -----------
VENV=${STROM_VENV:-$CACHE/venv}
install_python() { strom_venv "$VENV"; }
PY_READY=
install_python && PY_READY=1 || echo "!! could not install confluent-kafka"

# ---- certificates ---------------------------------------------------------------
# ca.pem; broker.pem (key + cert O=strom,CN=localhost + CA: MAPPED's PEM
# keystore); mtls.pem (MTLS's keystore: another key and cert,
# O=strom,OU=mtls,CN=localhost) and mtls-reloaded.pem (the one that replaces
# it: O=strom,OU=reloaded,CN=localhost); alice.crt/key (O=strom,OU=eng,CN=alice),
# mallory.crt/key (O=strom,OU=eng,CN=mallory). Serials are random (-CAcreateserial
# starts at a random one and counts up).
CERTS=$WORK/certs
make_certs() {
    mkdir -p "$CERTS" && cd "$CERTS" || return 1
    tls_ca ca || return 1
    tls_cert ca broker "/O=strom/CN=localhost" server || return 1
    tls_cert ca mtls "/O=strom/OU=mtls/CN=localhost" server || return 1
    tls_cert ca mtls-reloaded "/O=strom/OU=reloaded/CN=localhost" server || return 1
    tls_cert ca alice "/O=strom/OU=eng/CN=alice" client || return 1
    tls_cert ca mallory "/O=strom/OU=eng/CN=mallory" client || return 1
    cp mtls.pem mtls-keystore.pem   # the file MTLS serves from (replaced by cert-reload)
}
(make_certs) >"$WORK/openssl.log" 2>&1 || { echo "openssl failed:"; cat "$WORK/openssl.log"; exit 1; }

# ---- server.properties ----------------------------------------------------------
P_PLAINTEXT=$(free_port); P_SASL=$(free_port); P_MTLS=$(free_port); P_MAPPED=$(free_port)
H=127.0.0.1
LISTENERS="PLAINTEXT://$H:$P_PLAINTEXT,SASL_PLAINTEXT://$H:$P_SASL,MTLS://$H:$P_MTLS,MAPPED://$H:$P_MAPPED"
PROTOCOLS="PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,MTLS:SSL,MAPPED:SSL"
PLAIN_JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";'
PROPS=$WORK/server.properties
{
    echo "# compat/security/acls.sh, target $TARGET"
    one_node_props "$TARGET" "$LISTENERS" "$PROTOCOLS" "$WORK/$TARGET"
    cat <<PROPS
advertised.listeners=$LISTENERS
inter.broker.listener.name=PLAINTEXT
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false

# ACLs
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false

# TLS: PEM keystores; MTLS has a keystore of its own (replaced by cert-reload)
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.mtls.ssl.keystore.type=PEM
listener.name.mtls.ssl.keystore.location=$CERTS/mtls-keystore.pem
listener.name.mtls.ssl.client.auth=required
listener.name.mapped.ssl.client.auth=required
listener.name.mapped.ssl.principal.mapping.rules=RULE:^CN=(.*?),OU=.*\$/\$1/L,DEFAULT

# SASL PLAIN users
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$PLAIN_JAAS
PROPS
} >"$PROPS"

# ---- the broker -----------------------------------------------------------------
KAFKA_BOOTSTRAP=$H:$P_PLAINTEXT
start_one_node "$TARGET" "$PROPS" "$WORK/$TARGET" --log-level "${STROM_LOG_LEVEL:-info}" || exit 1
echo "== acls: $TARGET, listeners $LISTENERS ($((SECONDS - started))s)"

check() { # check CLIENT SCENARIO STATUS DETAIL
    if [ "$3" -eq 0 ]; then result "$1" "$2" PASS "$4"; else result "$1" "$2" FAIL "$4"; fi | tee -a "$RESULTS"
}
oneline() { tr '\n\t' '  ' | sed -E 's/  +/ /g' | head -c "${1:-800}"; }

# ---- 1. kafka-acls.sh over PLAINTEXT --------------------------------------------
ACLS=(timeout 60 "$KAFKA_HOME/bin/kafka-acls.sh" --bootstrap-server "$H:$P_PLAINTEXT")
# The bindings as kafka-acls.sh --list prints them: per resource pattern a
# "Current ACLs for resource `ResourcePattern(...)`:" line, then one
# "(principal=..., host=*, operation=..., permissionType=...)" line per ACL.
# has_binding OUTPUT RESOURCE-PATTERN ACL: the ACL line under that pattern's header.
has_binding() {
    awk -v res="$2" -v acl="$3" '
        /^Current ACLs for resource/ { inres = index($0, "`" res "`") > 0; next }
        inres && index($0, acl) { found = 1 }
        END { exit !found }' <<<"$1"
}
ORDERS='ResourcePattern(resourceType=TOPIC, name=acl-orders, patternType=LITERAL)'
GROUP='ResourcePattern(resourceType=GROUP, name=acl-g, patternType=LITERAL)'
PREFIX='ResourcePattern(resourceType=TOPIC, name=acl-, patternType=PREFIXED)'
acl() { echo "(principal=$1, host=*, operation=$2, permissionType=$3)"; }
out=$(
    "${ACLS[@]}" --add --allow-principal User:alice --operation Write --operation Read --topic acl-orders 2>&1
    "${ACLS[@]}" --add --allow-principal User:alice --operation Read --group acl-g 2>&1
    "${ACLS[@]}" --add --allow-principal User:bob --operation Describe --operation Read \
        --resource-pattern-type prefixed --topic acl- 2>&1
)
echo "$out" >"$WORK/kafka-acls-add.out"
list=$("${ACLS[@]}" --list 2>&1)
echo "$list" >"$WORK/kafka-acls-list.out"
ok=0 missing=
for want in "$ORDERS|$(acl User:alice WRITE ALLOW)" "$ORDERS|$(acl User:alice READ ALLOW)" \
    "$GROUP|$(acl User:alice READ ALLOW)" "$PREFIX|$(acl User:bob DESCRIBE ALLOW)" \
    "$PREFIX|$(acl User:bob READ ALLOW)"; do
    has_binding "$list" "${want%%|*}" "${want#*|}" || { ok=1; missing="$missing ${want#*|} on ${want%%|*};"; }
done
# --add itself prints the bindings it adds, under "Adding ACLs for resource".
[ "$(grep -c '^Adding ACLs for resource `ResourcePattern' <<<"$out")" = 3 ] || { ok=1; missing="$missing (--add output);"; }
n=$(grep -c '(principal=' <<<"$list")
[ "$n" = 5 ] || { ok=1; missing="$missing ($n bindings listed, not 5);"; }
check kafka-acls add-list $ok "${missing:+missing:$missing }--list: $(oneline 900 <<<"$list")"

out=$("${ACLS[@]}" --remove --force --allow-principal User:bob --operation Describe \
    --resource-pattern-type prefixed --topic acl- 2>&1)
echo "$out" >"$WORK/kafka-acls-remove.out"
list=$("${ACLS[@]}" --list 2>&1)
echo "$list" >"$WORK/kafka-acls-list2.out"
ok=0 missing=
for want in "$ORDERS|$(acl User:alice WRITE ALLOW)" "$ORDERS|$(acl User:alice READ ALLOW)" \
    "$GROUP|$(acl User:alice READ ALLOW)" "$PREFIX|$(acl User:bob READ ALLOW)"; do
    has_binding "$list" "${want%%|*}" "${want#*|}" || { ok=1; missing="$missing ${want#*|} on ${want%%|*};"; }
done
has_binding "$list" "$PREFIX" "$(acl User:bob DESCRIBE ALLOW)" && { ok=1; missing="$missing bob's DESCRIBE still listed;"; }
n=$(grep -c '(principal=' <<<"$list")
[ "$n" = 4 ] || { ok=1; missing="$missing ($n bindings listed, not 4);"; }
check kafka-acls remove-list $ok "${missing:+missing:$missing }--remove --force: $(oneline 300 <<<"${out:-(no output)}"); --list: $(oneline 700 <<<"$list")"

# A principal with commas: the MTLS client certificate's subject.
out=$("${ACLS[@]}" --add --allow-principal 'User:CN=alice,OU=eng,O=strom' --operation Write --topic acl-mtls 2>&1)
echo "$out" >"$WORK/kafka-acls-mtls.out"
grep -qF "$(acl 'User:CN=alice,OU=eng,O=strom' WRITE ALLOW)" <<<"$out"
check kafka-acls mtls-principal-add $? "$(oneline 500 <<<"$out")"

# ---- 2.-5. confluent-kafka: acls.py ------------------------------------------------
export ACL_PLAINTEXT=$H:$P_PLAINTEXT ACL_SASL_PLAINTEXT=$H:$P_SASL ACL_MTLS=$H:$P_MTLS ACL_MAPPED=$H:$P_MAPPED \
    ACL_CERTS=$CERTS ACL_TARGET=$TARGET
CLIENT_TIMEOUT=${SECURITY_CLIENT_TIMEOUT:-300}
echo "== confluent-kafka (acls.py)"
t0=$SECONDS
if [ -n "$PY_READY" ]; then
    timeout -k 10 "$CLIENT_TIMEOUT" "$VENV/bin/python" "$HERE/acls.py" >"$WORK/acls-py.out" 2>"$WORK/acls-py.err"
    status=$?
else
    status="not installed"
fi
grep '^RESULT ' "$WORK/acls-py.out" 2>/dev/null | tee -a "$RESULTS"
for s in $PY_SCENARIOS; do
    client=acls
    [[ $s == mtls-* || $s == mapped-* ]] && client=tls
    grep -q "^RESULT $client $s " "$WORK/acls-py.out" 2>/dev/null ||
        result "$client" "$s" FAIL "did not finish (exit $status; stderr: $(tail -c 600 "$WORK/acls-py.err" 2>/dev/null | tr '\n' ' '))" |
        tee -a "$RESULTS"
done
echo "   (acls.py: $((SECONDS - t0))s)"

# ---- 6. TLS certificate reload ----------------------------------------------------
# served_cert PORT: the subject and serial of the cert a new connection gets
# (with alice's client cert; the chain verified against the CA for 127.0.0.1).
served_cert() {
    local out
    out=$(timeout 10 openssl s_client -connect "$H:$1" -CAfile "$CERTS/ca.pem" -verify_ip 127.0.0.1 \
        -verify_return_error -cert "$CERTS/alice.crt" -key "$CERTS/alice.key" -showcerts </dev/null 2>/dev/null) || true
    grep -q "Verify return code: 0 (ok)" <<<"$out" || { echo "not verified"; return; }
    # The first certificate of -showcerts' chain is the server's own.
    awk '/-----BEGIN CERTIFICATE-----/ { on = 1 } on { print } /-----END CERTIFICATE-----/ { exit }' <<<"$out" |
        openssl x509 -noout -subject -serial 2>/dev/null | tr '\n' ' '
}
cert_id() { openssl x509 -noout -subject -serial -in "$1" | tr '\n' ' '; }
if [ "$TARGET" = kafka ]; then
    result tls cert-reload PASS "n/a: Kafka reloads a listener's keystore only on a dynamic config change (kafka-configs.sh --alter --entity-type brokers ... listener.name.mtls.ssl.keystore.location=...), not when the file changes" |
        tee -a "$RESULTS"
else
    old=$(cert_id "$CERTS/mtls.crt") new=$(cert_id "$CERTS/mtls-reloaded.crt") mapped=$(cert_id "$CERTS/broker.crt")
    before=$(served_cert "$P_MTLS")
    ok=0 detail="before: MTLS serves $before;"
    [ "$before" = "$old" ] || { ok=1; detail="$detail expected $old;"; }
    # Replaced atomically (a rename), as a deployment tool would.
    cp "$CERTS/mtls-reloaded.pem" "$CERTS/mtls-keystore.pem.tmp" && mv "$CERTS/mtls-keystore.pem.tmp" "$CERTS/mtls-keystore.pem"
    t_replace=$(date +%s.%N)
    deadline=$((SECONDS + 10)) tries=0
    while :; do
        tries=$((tries + 1))
        now=$(served_cert "$P_MTLS")
        [ "$now" = "$new" ] && break
        [ $SECONDS -ge $deadline ] && break
        sleep 0.25
    done
    took=$(python3 -c "import sys,time; print(f'{time.time() - float(sys.argv[1]):.1f}')" "$t_replace")
    if [ "$now" = "$new" ]; then
        detail="$detail after the file's replacement: $now within ${took}s ($tries connections);"
    else
        ok=1 detail="$detail after ${took}s ($tries connections) still: $now, expected $new;"
    fi
    other=$(served_cert "$P_MAPPED")
    [ "$other" = "$mapped" ] || ok=1
    detail="$detail MAPPED still serves $other;"
    # A client over MTLS after the reload: alice's certificate, the reloaded
    # server cert verified against the CA (acls.py's mtls-principal produce).
    if [ -n "$PY_READY" ]; then
        out=$(timeout -k 10 60 "$VENV/bin/python" "$HERE/acls.py" --after-reload 2>&1)
        grep -q '^OK ' <<<"$out" || ok=1
        detail="$detail confluent-kafka over MTLS afterwards: $(oneline 300 <<<"$out")"
    fi
    grep -q "reloaded TLS certificates" "$BROKER_LOG" && detail="$detail; broker log: $(grep -m1 -o 'reloaded TLS certificates.*' "$BROKER_LOG" | head -c 200)"
    check tls cert-reload $ok "$detail"
fi

if [ "$TARGET" = kafka ]; then
    echo "== refusals in Kafka's authorizer log (principal, operation, resource)"
    grep -h "is Denied" "$KAFKA_STATE"/logs/kafka-authorizer.log* 2>/dev/null |
        sed -nE 's/.*Principal = ([^ ]+( [^ ]+)*) is Denied operation = ([A-Za-z]+) from host = [^ ]+ on resource = ([^ ]+) .*/\1 \3 \4/p' |
        sort | uniq -c | sed 's/^/   /'
fi
pass=$(awk '$1 == "RESULT" && $4 == "PASS"' "$RESULTS" | wc -l)
fail=$(awk '$1 == "RESULT" && $4 != "PASS"' "$RESULTS" | wc -l)
if [ "$fail" -ne 0 ]; then
    echo "--- $TARGET log (last 100 lines) ---"
    tail -n 100 "$BROKER_LOG"
fi
echo "acls ($TARGET): $((SECONDS - started))s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
