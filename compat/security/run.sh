#!/usr/bin/env bash
# TLS and SASL listeners: stock clients over SSL, SASL_PLAINTEXT, SASL_SSL
# and mutual TLS, with Kafka's own server.properties keys.
#
#   bash compat/security/run.sh [scenario...]                 # against the release strom binary
#   SECURITY_TARGET=kafka bash compat/security/run.sh [...]   # the same against a real Kafka 4.1
#   SECURITY_KEEP=DIR ...   # keeps the certs, server.properties, broker and client logs in DIR
#
# One broker for the whole run, on free loopback ports, with five listeners
#   PLAINTEXT       (inter-broker; kafka-configs.sh creates the SCRAM users over it)
#   SSL             PEM keystore (key + chain in one file, ssl.keystore.type=PEM)
#   SASL_PLAINTEXT  PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
#   SASL_SSL        the same mechanisms; PKCS12 keystore (listener.name.sasl_ssl.ssl.keystore.*)
#                   with a cert of its own (OU=sasl-ssl)
#   MTLS            security protocol SSL with listener.name.mtls.ssl.client.auth=required;
#                   the client cert's subject is CN=alice,OU=eng,O=strom; its PEM keystore
#                   holds the key encrypted (PKCS#8, listener.name.mtls.ssl.key.password)
# (Kafka gets a CONTROLLER listener as well.) A throwaway CA, broker and
# client certs are made with openssl in the run's temp dir; the broker cert
# has SAN IP:127.0.0.1 and DNS:localhost and clients verify it. PLAIN users
# (admin/admin-secret, alice/alice-secret) come from the listeners' JAAS
# configs; the SCRAM user alice/alice-secret (SHA-256 and SHA-512) is made
# with Kafka's kafka-configs.sh --alter, one call per mechanism, and checked
# with --describe (RESULT kafka-tools scram-alter / scram-describe); both
# mechanisms in one --add-config must be refused as Kafka 4.1 refuses them
# (scram-alter-both-refused: DUPLICATE_RESOURCE, "A user credential cannot
# be altered twice in the same request"). `openssl s_client` checks that
# each TLS listener serves its keystore's cert, verified against the CA for
# IP 127.0.0.1 (RESULT openssl listener-certs).
#
# Then every client runs every scenario (RESULT <client> <scenario> PASS|FAIL detail):
# confluent-kafka (python, compat/python's venv), kafkajs (compat/kafkajs's
# node_modules), Java kafka-clients 4.1.0 (from the Kafka distribution's
# libs/), kcat (Debian's, librdkafka 2.0.2).
#   ssl, sasl-plaintext-plain, sasl-plaintext-scram-sha-256,
#   sasl-ssl-scram-sha-512, sasl-ssl-plain (user admin), mtls:
#       create a fresh topic (kcat: auto-created), produce 5 keyed records,
#       consume them back in a consumer group (kcat: partition 0, no group)
#   sasl-plain-wrong-password, sasl-plain-unknown-user,
#   sasl-scram-wrong-password, sasl-scram-unknown-user:
#       refused; the client reports an authentication failure (Kafka's
#       SASL_AUTHENTICATION_FAILED, 58, with Kafka's message, in the detail)
#   mtls-no-cert: a client without a certificate on MTLS is refused in the
#       TLS handshake
#   oauth-unsecured: OAUTHBEARER on SASL_PLAINTEXT (Kafka's unsecured
#       validator, no callback handler): an unsecured token (alg none) for
#       alice, round trip as above
#   oauth-expired: an unsecured token that expired an hour ago is refused:
#       Kafka's error challenge, then SASL_AUTHENTICATION_FAILED
#       {"status":"invalid_token"} (kafkajs never reads the challenge: its
#       next request, Metadata, gets an empty error response, "No brokers")
#   oauth-jwks: OAUTHBEARER on SASL_SSL with OAuthBearerValidatorCallbackHandler:
#       an RS256 token (jwt.py, openssl) whose key is in the JWKS served by
#       python's http.server on a free loopback port; expected issuer and
#       audience set; round trip
#   oauth-jwks-wrong-key: the same claims signed by another key under the
#       same kid: refused as oauth-expired
# kcat runs only oauth-unsecured (librdkafka's own unsecured token): it cannot
# hand librdkafka another token. Kafka 4.1 gets
# sasl.oauthbearer.jwt.validator.class=...BrokerJwtValidator (its default
# checks no signature) and -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls
# (the JWKS URL; for the Java client, its token files).
# kcat's librdkafka 2.0.2 cannot log in with SCRAM at a Kafka 4.x broker
# (librdkafka#4895: a wrong nonce in its client-final-message, which Kafka
# checks since CVE-2024-56128): its two SCRAM scenarios check that refusal
# ("PASS n/a: ..."). With SECURITY_TARGET=kafka the run ends with the
# principals Kafka's request log names per listener and the refusals in its
# server log. Every client process is bounded by a timeout
# (SECURITY_CLIENT_TIMEOUT, 300 s). The Kafka distribution
# (../shared/kafka, compat/lib/kafka.sh) is needed for both targets (its
# kafka-configs.sh and its client jars); without it every scenario is
# "PASS n/a: no Kafka distribution".
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
source "$ROOT/compat/lib/broker.sh"
source "$ROOT/compat/lib/kafka.sh"
source "$ROOT/compat/lib/tls.sh"
source "$ROOT/compat/lib/venv.sh"

TARGET=${SECURITY_TARGET:-strom}
case $TARGET in strom | kafka) ;; *) echo "SECURITY_TARGET must be strom or kafka, not $TARGET"; exit 2 ;; esac
CLIENTS="confluent-kafka kafkajs java kcat"
ALL_SCENARIOS="ssl sasl-plaintext-plain sasl-plaintext-scram-sha-256 sasl-ssl-scram-sha-512
    sasl-ssl-plain mtls sasl-plain-wrong-password sasl-plain-unknown-user
    sasl-scram-wrong-password sasl-scram-unknown-user mtls-no-cert
    oauth-unsecured oauth-expired oauth-jwks oauth-jwks-wrong-key"
SCENARIOS=${*:-$(echo $ALL_SCENARIOS)}
SCENARIOS=$(echo $SCENARIOS)
for s in $SCENARIOS; do
    [[ " $(echo $ALL_SCENARIOS) " == *" $s "* ]] || { echo "unknown scenario $s (known: $(echo $ALL_SCENARIOS))"; exit 2; }
done
started=$SECONDS

if ! kafka_dist; then
    for c in $CLIENTS; do for s in $SCENARIOS; do result "$c" "$s" PASS "n/a: no Kafka distribution"; done; done
    exit 0
fi
[ "$TARGET" = kafka ] || [ -x "$STROM_BIN" ] || { echo "no $STROM_BIN: run cargo build --release first"; exit 1; }

CACHE=${STROM_CACHE:-$HOME/.cache/strom}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-security.XXXXXX")
RESULTS=$WORK/results
: >"$RESULTS"
BROKER_PID= JWKS_PID=
cleanup() {
    [ -n "$JWKS_PID" ] && kill "$JWKS_PID" 2>/dev/null
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

# ---- the clients' installs (shared with compat/python, compat/kafkajs) ---------
VENV=${STROM_VENV:-$CACHE/venv}
install_python() { strom_venv "$VENV"; }
install_kafkajs() {
    local dir=$ROOT/compat/kafkajs want
    want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
    [ "$(cat "$dir/node_modules/.strom-lock.sha256" 2>/dev/null)" = "$want" ] && return 0
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || return 1
    echo "$want" >"$dir/node_modules/.strom-lock.sha256"
}
JAVA_CLASSES=$CACHE/security/classes
JAVA_CP="$KAFKA_HOME/libs/*"
install_java() {
    mkdir -p "$JAVA_CLASSES"
    if [ ! -f "$JAVA_CLASSES/Security.class" ] || [ "$HERE/Security.java" -nt "$JAVA_CLASSES/Security.class" ]; then
        javac -Xlint:all -Xlint:-options -Werror -d "$JAVA_CLASSES" -cp "$JAVA_CP" "$HERE/Security.java" || return 1
    fi
}
declare -A CLIENT_READY
install_python && CLIENT_READY[confluent-kafka]=1 || echo "!! could not install confluent-kafka"
install_kafkajs && CLIENT_READY[kafkajs]=1 || echo "!! could not install kafkajs"
install_java && CLIENT_READY[java]=1 || echo "!! could not compile Security.java"
CLIENT_READY[kcat]=1

# ---- certificates ---------------------------------------------------------------
# ca.pem (CA cert), broker.pem (key + broker cert O=strom,CN=localhost + CA:
# the PEM keystore), broker.p12 (PKCS12, password $P12_PASSWORD: another key,
# cert O=strom,OU=sasl-ssl,CN=localhost, and the CA), client.key / client.crt
# / client.pem (alice's key, cert, key + chain). Broker certs: SAN
# IP:127.0.0.1, DNS:localhost.
CERTS=$WORK/certs
P12_PASSWORD=broker-p12-secret
KEY_PASSWORD=broker-key-secret
make_certs() {
    mkdir -p "$CERTS" && cd "$CERTS" || return 1
    tls_ca ca || return 1
    tls_cert ca broker "/O=strom/CN=localhost" server || return 1
    # SASL_SSL's own key and cert (OU=sasl-ssl), so a client can tell which keystore served it.
    tls_cert ca sasl-ssl "/O=strom/OU=sasl-ssl/CN=localhost" server || return 1
    openssl pkcs12 -export -in sasl-ssl.crt -inkey sasl-ssl.key -certfile ca.pem -name broker \
        -passout "pass:$P12_PASSWORD" -out broker.p12 || return 1
    tls_cert ca client "/O=strom/OU=eng/CN=alice" client || return 1
    # MTLS's PEM keystore holds the broker key encrypted (PKCS#8 with PBE-SHA1-3DES, the
    # scheme Kafka reads on Java 17; ssl.key.password).
    openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in broker.key -passout "pass:$KEY_PASSWORD" \
        -out broker-encrypted.key || return 1
    cat broker-encrypted.key broker.crt ca.pem >broker-encrypted.pem
}
(make_certs) >"$WORK/openssl.log" 2>&1 || { echo "openssl failed:"; cat "$WORK/openssl.log"; exit 1; }

# ---- OAUTHBEARER: a JWKS on loopback and the tokens (jwt.py) ---------------------
# jwt.key signs the tokens and is published as kid "strom-test-1" in
# $WORK/jwks/jwks.json (python's http.server on a free port); jwt-other.key
# signs a token under the same kid that must not verify.
JWT=$WORK/jwt
JWT_ISSUER=https://issuer.strom.test
JWT_AUDIENCE=strom-security
JWT_KID=strom-test-1
P_JWKS=$(free_port)
JWKS_URL=http://127.0.0.1:$P_JWKS/jwks.json
make_jwt() {
    mkdir -p "$JWT" "$WORK/jwks" || return 1
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$JWT/jwt.key" || return 1
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$JWT/jwt-other.key" || return 1
    python3 "$HERE/jwt.py" jwks "$JWT_KID" "$JWT/jwt.key" >"$WORK/jwks/jwks.json" || return 1
    local claims='{"iss": "'$JWT_ISSUER'", "aud": "'$JWT_AUDIENCE'", "sub": "alice", "scope": "kafka", "iat": "+0", "exp": "+3600"}'
    python3 "$HERE/jwt.py" sign "$JWT_KID" "$JWT/jwt.key" "$claims" >"$JWT/good.jwt" || return 1
    python3 "$HERE/jwt.py" sign "$JWT_KID" "$JWT/jwt-other.key" "$claims" >"$JWT/other-key.jwt"
}
(make_jwt) >"$WORK/jwt.log" 2>&1 || { echo "making the JWTs failed:"; cat "$WORK/jwt.log"; exit 1; }
python3 -m http.server "$P_JWKS" --bind 127.0.0.1 --directory "$WORK/jwks" >"$WORK/jwks.log" 2>&1 &
JWKS_PID=$!

# ---- server.properties ----------------------------------------------------------
P_PLAINTEXT=$(free_port); P_SSL=$(free_port); P_SASL_PLAINTEXT=$(free_port)
P_SASL_SSL=$(free_port); P_MTLS=$(free_port)
H=127.0.0.1
LISTENERS="PLAINTEXT://$H:$P_PLAINTEXT,SSL://$H:$P_SSL,SASL_PLAINTEXT://$H:$P_SASL_PLAINTEXT,SASL_SSL://$H:$P_SASL_SSL,MTLS://$H:$P_MTLS"
PROTOCOLS="PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL"
PLAIN_JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret";'
SCRAM_JAAS='org.apache.kafka.common.security.scram.ScramLoginModule required;'
# The broker's own OAUTHBEARER login (a token for itself, never used here) and
# the unsecured validator's options.
OAUTH_UNSECURED_JAAS='org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="admin" unsecuredValidatorAllowableClockSkewMs="2000";'
OAUTH_JWKS_JAAS='org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;'
PROPS=$WORK/server.properties
{
    echo "# compat/security/run.sh, target $TARGET"
    one_node_props "$TARGET" "$LISTENERS" "$PROTOCOLS" "$WORK/$TARGET"
    cat <<PROPS
advertised.listeners=$LISTENERS
inter.broker.listener.name=PLAINTEXT
num.partitions=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0

# TLS: PEM keystore (key and chain in one file) for SSL, the same with the key
# encrypted for MTLS, PKCS12 for SASL_SSL
ssl.keystore.type=PEM
ssl.keystore.location=$CERTS/broker.pem
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.pem
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$CERTS/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$P12_PASSWORD
listener.name.mtls.ssl.client.auth=required
listener.name.mtls.ssl.keystore.type=PEM
listener.name.mtls.ssl.keystore.location=$CERTS/broker-encrypted.pem
listener.name.mtls.ssl.key.password=$KEY_PASSWORD

# SASL: PLAIN users in the JAAS config, SCRAM users in the metadata (kafka-configs.sh)
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_plaintext.plain.sasl.jaas.config=$PLAIN_JAAS
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$SCRAM_JAAS
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$SCRAM_JAAS
listener.name.sasl_ssl.plain.sasl.jaas.config=$PLAIN_JAAS
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$SCRAM_JAAS
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$SCRAM_JAAS

# OAUTHBEARER: unsecured (alg none) tokens on SASL_PLAINTEXT (no callback
# handler: Kafka's OAuthBearerUnsecuredValidatorCallbackHandler), RS256 tokens
# checked against the JWKS on SASL_SSL
listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config=$OAUTH_UNSECURED_JAAS
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=$OAUTH_JWKS_JAAS
listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler
sasl.oauthbearer.jwks.endpoint.url=$JWKS_URL
sasl.oauthbearer.expected.issuer=$JWT_ISSUER
sasl.oauthbearer.expected.audience=$JWT_AUDIENCE
# Kafka 4.1.0's default, DefaultJwtValidator, validates with ClientJwtValidator
# when a broker creates it: claims only, no signature check, the JWKS never
# fetched (a token signed by any key is accepted). BrokerJwtValidator checks
# the signature. strom checks it with either.
sasl.oauthbearer.jwt.validator.class=org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator
PROPS
} >"$PROPS"

# ---- the broker -----------------------------------------------------------------
KAFKA_BOOTSTRAP=$H:$P_PLAINTEXT
# Kafka 4 reads no OAuth URL unless this system property allows it.
KAFKA_OPTS="-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=$JWKS_URL" \
    start_one_node "$TARGET" "$PROPS" "$WORK/$TARGET" --log-level "${STROM_LOG_LEVEL:-info}" || exit 1
echo "== security: $TARGET, listeners $LISTENERS ($((SECONDS - started))s)"

# ---- SCRAM users: Kafka's own kafka-configs.sh over PLAINTEXT ---------------------
check() { # check CLIENT SCENARIO STATUS DETAIL
    if [ "$3" -eq 0 ]; then result "$1" "$2" PASS "$4"; else result "$1" "$2" FAIL "$4"; fi | tee -a "$RESULTS"
}
KC=("$KAFKA_HOME/bin/kafka-configs.sh" --bootstrap-server "$H:$P_PLAINTEXT")
if [ "$TARGET" = kafka ]; then
    # Kafka's request log names each request's API, listener and principal:
    # on from here (the summary at the end reads it).
    timeout 60 "${KC[@]}" --alter --entity-type broker-loggers --entity-name 1 \
        --add-config kafka.request.logger=DEBUG >/dev/null 2>&1
fi
# Both mechanisms in one --add-config: Kafka 4.1's controller refuses two
# changes of one user in one AlterUserScramCredentials request
# (ScramControlManager keys them by user name), DUPLICATE_RESOURCE.
out=$(timeout 60 "${KC[@]}" --alter --entity-type users --entity-name alice \
    --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret],SCRAM-SHA-512=[password=alice-secret]' 2>&1)
grep -q "DuplicateResourceException: A user credential cannot be altered twice in the same request" <<<"$out"
check kafka-tools scram-alter-both-refused $? "$(grep -m1 -o 'DuplicateResourceException: .*' <<<"$out" || head -c 400 <<<"$out")"
# So one call per mechanism.
out=$(timeout 60 "${KC[@]}" --alter --entity-type users --entity-name alice \
    --add-config 'SCRAM-SHA-256=[iterations=8192,password=alice-secret]' 2>&1 &&
    timeout 60 "${KC[@]}" --alter --entity-type users --entity-name alice \
        --add-config 'SCRAM-SHA-512=[password=alice-secret]' 2>&1)
[ "$(grep -c "^Completed updating config for user alice.$" <<<"$out")" = 2 ]
check kafka-tools scram-alter $? "$(tr '\n' ' ' <<<"$out" | head -c 600)"
# The credentials reach the broker's authenticators through the metadata log:
# describe until both are listed (Kafka lists them in either order).
deadline=$((SECONDS + 30))
while :; do
    out=$(timeout 60 "${KC[@]}" --describe --entity-type users 2>&1)
    line=$(grep "^SCRAM credential configs for user-principal 'alice' are " <<<"$out")
    [[ $line == *"SCRAM-SHA-256=iterations=8192"* && $line == *"SCRAM-SHA-512=iterations=4096"* ]] && ok=0 || ok=1
    [ $ok -eq 0 ] || [ $SECONDS -ge $deadline ] && break
    sleep 0.5
done
check kafka-tools scram-describe $ok "$(tr '\n' ' ' <<<"$out" | head -c 600)"

# ---- each TLS listener serves its keystore's cert (openssl s_client) ----------
detail= ok=0
for l in SSL SASL_SSL MTLS; do
    port=P_$l
    cert=()
    [ $l = MTLS ] && cert=(-cert "$CERTS/client.crt" -key "$CERTS/client.key")
    out=$(timeout 15 openssl s_client -connect "$H:${!port}" -CAfile "$CERTS/ca.pem" -verify_ip 127.0.0.1 \
        -verify_return_error "${cert[@]}" </dev/null 2>&1)
    subject=$(grep -m1 '^subject=' <<<"$out")
    want="subject=O = strom, CN = localhost"
    [ $l = SASL_SSL ] && want="subject=O = strom, OU = sasl-ssl, CN = localhost"
    [ "$subject" = "$want" ] && grep -q "Verify return code: 0 (ok)" <<<"$out" || ok=1
    detail="$detail$l: ${subject:-no cert} ($(grep -m1 -oE 'New, [^,]+, Cipher is [^ ]+' <<<"$out"); $(grep -m1 -o 'Verify return code: .*' <<<"$out")). "
done
check openssl listener-certs $ok "$detail"

# ---- the clients ----------------------------------------------------------------
export SEC_PLAINTEXT=$H:$P_PLAINTEXT SEC_SSL=$H:$P_SSL SEC_SASL_PLAINTEXT=$H:$P_SASL_PLAINTEXT \
    SEC_SASL_SSL=$H:$P_SASL_SSL SEC_MTLS=$H:$P_MTLS SEC_CA=$CERTS/ca.pem SEC_CLIENT_CERT=$CERTS/client.crt \
    SEC_CLIENT_KEY=$CERTS/client.key SEC_CLIENT_PEM=$CERTS/client.pem SEC_TARGET=$TARGET \
    SEC_JWT_GOOD=$JWT/good.jwt SEC_JWT_OTHER_KEY=$JWT/other-key.jwt
CLIENT_TIMEOUT=${SECURITY_CLIENT_TIMEOUT:-300}
run_client() { # run_client CLIENT COMMAND...: RESULT lines to the results; a missing one is a FAIL
    local client=$1 status s t0=$SECONDS
    shift
    echo "== $client"
    if [ -z "${CLIENT_READY[$client]:-}" ]; then
        for s in $SCENARIOS; do result "$client" "$s" FAIL "the client could not be installed (see above)"; done | tee -a "$RESULTS"
        return
    fi
    timeout -k 10 "$CLIENT_TIMEOUT" "$@" $SCENARIOS >"$WORK/$client.out" 2>"$WORK/$client.err"
    status=$?
    grep '^RESULT ' "$WORK/$client.out" | tee -a "$RESULTS"
    for s in $SCENARIOS; do
        grep -q "^RESULT $client $s " "$WORK/$client.out" ||
            result "$client" "$s" FAIL "did not finish (exit $status; stderr: $(tail -c 600 "$WORK/$client.err" | tr '\n' ' '))" | tee -a "$RESULTS"
    done
    echo "   ($client: $((SECONDS - t0))s)"
}
run_client confluent-kafka "$VENV/bin/python" "$HERE/confluent.py"
run_client kafkajs node "$HERE/kafkajs.js"
# The Java client reads its OAUTHBEARER token files only where this system property allows.
java_token_urls=file://$JWT/good.jwt,file://$JWT/other-key.jwt
run_client java java -Dlog4j2.configurationFile="$ROOT/compat/java/log4j2.properties" \
    -Dstrom.java.log="${JAVA_LOG:-warn}" -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls="$java_token_urls" \
    -cp "$JAVA_CLASSES:$JAVA_CP" Security
run_client kcat bash "$HERE/kcat.sh"

if [ "$TARGET" = kafka ]; then
    echo "== principals in Kafka's request log (listener, principal, requests)"
    grep -oh '"principal":"[^"]*","listener":"[^"]*"' "$KAFKA_STATE"/logs/kafka-request.log* 2>/dev/null |
        grep -v CONTROLLER | sed -E 's/"principal":"([^"]*)","listener":"([^"]*)"/\2 \1/' | sort | uniq -c |
        awk '{ n = $1; $1 = ""; print "   " $0 " (" n ")" }'
    echo "== requests of kafka-configs.sh on PLAINTEXT (API, count)"
    grep -h '"listener":"PLAINTEXT"' "$KAFKA_STATE"/logs/kafka-request.log* 2>/dev/null |
        sed -nE 's/.*"requestApiVersion":([0-9]+),.*"requestApiKeyName":"([^"]*)".*/\2 v\1/p' |
        sort | uniq -c | sed 's/^/   /'
    echo "== refusals in Kafka's server log"
    grep -h "Failed authentication with" "$KAFKA_STATE"/logs/server.log* 2>/dev/null |
        sed -E 's/^.*Failed authentication with [^ ]+ \(channelId=[^)]*\) //; s/ \(org\.apache.*$//' | sort | uniq -c
fi
# ACLs, mutual-TLS principals and certificate reload, on a broker of their own.
echo "== acls.sh"
SECURITY_TARGET=$TARGET SECURITY_KEEP=${SECURITY_KEEP:+$SECURITY_KEEP/acls} bash "$HERE/acls.sh" 2>&1 | tee "$WORK/acls.out"
grep '^RESULT ' "$WORK/acls.out" >>"$RESULTS"
pass=$(awk '$1 == "RESULT" && $4 == "PASS"' "$RESULTS" | wc -l)
fail=$(awk '$1 == "RESULT" && $4 != "PASS"' "$RESULTS" | wc -l)
if [ "$fail" -ne 0 ]; then
    echo "--- $TARGET log (last 100 lines) ---"
    tail -n 100 "$BROKER_LOG"
fi
echo "security ($TARGET): $((SECONDS - started))s"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
