#!/usr/bin/env bash
# kcat (Debian's kcat 1.7.1, librdkafka 2.0.2) over the TLS and SASL listeners.
#
#   bash kcat.sh SCENARIO...
#
# run.sh sets SEC_<LISTENER>, SEC_CA, SEC_CLIENT_CERT, SEC_CLIENT_KEY. kcat
# has no admin API: a scenario's topic is auto-created by the produce, and
# read back from partition 0 without a group. A build without ssl or
# sasl_plain/sasl_scram/sasl_oauthbearer in builtin.features reports the
# scenarios it cannot run as "PASS n/a: ...". OAUTHBEARER: librdkafka's own
# unsecured token (sasl.oauthbearer.config=principal=alice); kcat has no way
# to hand librdkafka another token (no oauth_cb), so the expired and signed
# token scenarios are "PASS n/a". Every kcat call is bounded by `timeout`.
set -uo pipefail
CLIENT=kcat
features=$(kcat -V 2>&1 | grep -o 'builtin.features=[^)]*' | cut -d= -f2)
has() { [[ ",$features," == *",$1,"* ]]; }
librdkafka=$(kcat -V 2>&1 | grep -o 'librdkafka [0-9.]*' | cut -d' ' -f2)
# librdkafka before 2.6.1 (librdkafka#4895) repeats its client nonce in the
# SCRAM client-final-message (r=<server nonce><client nonce> instead of
# r=<server nonce>); Kafka 4.x checks the nonce as RFC 5802 says
# (CVE-2024-56128) and refuses the login, whatever the password. Such a kcat
# cannot log in with SCRAM: its SCRAM scenarios check that refusal instead.
old_scram=0
[ "$(printf '%s\n' "$librdkafka" 2.6.1 | sort -V | head -n1)" = 2.6.1 ] || old_scram=1
PLAIN_REFUSED="Authentication failed: Invalid username or password"
SCRAM_REFUSED="Authentication failed during authentication due to invalid credentials with SASL mechanism "
failed=0

# spec SCENARIO: sets LISTENER MECH USER PASS CERT EXPECT
spec() {
    CERT=0 MECH= USER= PASS=
    case $1 in
    ssl) LISTENER=SSL EXPECT=ok ;;
    sasl-plaintext-plain) LISTENER=SASL_PLAINTEXT MECH=PLAIN USER=alice PASS=alice-secret EXPECT=ok ;;
    sasl-plaintext-scram-sha-256) LISTENER=SASL_PLAINTEXT MECH=SCRAM-SHA-256 USER=alice PASS=alice-secret EXPECT=ok ;;
    sasl-ssl-scram-sha-512) LISTENER=SASL_SSL MECH=SCRAM-SHA-512 USER=alice PASS=alice-secret EXPECT=ok ;;
    sasl-ssl-plain) LISTENER=SASL_SSL MECH=PLAIN USER=admin PASS=admin-secret EXPECT=ok ;;
    mtls) LISTENER=MTLS CERT=1 EXPECT=ok ;;
    sasl-plain-wrong-password) LISTENER=SASL_PLAINTEXT MECH=PLAIN USER=alice PASS=wrong-secret EXPECT=sasl ;;
    sasl-plain-unknown-user) LISTENER=SASL_SSL MECH=PLAIN USER=mallory PASS=alice-secret EXPECT=sasl ;;
    sasl-scram-wrong-password) LISTENER=SASL_PLAINTEXT MECH=SCRAM-SHA-256 USER=alice PASS=wrong-secret EXPECT=sasl ;;
    sasl-scram-unknown-user) LISTENER=SASL_SSL MECH=SCRAM-SHA-512 USER=mallory PASS=alice-secret EXPECT=sasl ;;
    mtls-no-cert) LISTENER=MTLS EXPECT=tls ;;
    oauth-unsecured) LISTENER=SASL_PLAINTEXT MECH=OAUTHBEARER EXPECT=ok ;;
    oauth-expired | oauth-jwks | oauth-jwks-wrong-key) LISTENER=SASL_PLAINTEXT MECH=OAUTHBEARER EXPECT=n/a ;;
    *) echo "unknown scenario $1" >&2; return 1 ;;
    esac
}

# The -X options of the current spec.
options() {
    local protocol=$LISTENER
    [ "$LISTENER" = MTLS ] && protocol=SSL
    OPTS=(-b "$(eval echo "\$SEC_$LISTENER")" -X "security.protocol=$protocol")
    [[ $protocol == *SSL* ]] && OPTS+=(-X "ssl.ca.location=$SEC_CA" -X ssl.endpoint.identification.algorithm=https)
    [ "$CERT" = 1 ] && OPTS+=(-X "ssl.certificate.location=$SEC_CLIENT_CERT" -X "ssl.key.location=$SEC_CLIENT_KEY")
    if [ "$MECH" = OAUTHBEARER ]; then
        OPTS+=(-X sasl.mechanisms=OAUTHBEARER -X enable.sasl.oauthbearer.unsecure.jwt=true
            -X sasl.oauthbearer.config=principal=alice)
    elif [ -n "$MECH" ]; then
        OPTS+=(-X "sasl.mechanisms=$MECH" -X "sasl.username=$USER" -X "sasl.password=$PASS")
    fi
    return 0
}

report() { # report SCENARIO OK DETAIL
    if [ "$2" -eq 0 ]; then echo "RESULT $CLIENT $1 PASS $3"; else echo "RESULT $CLIENT $1 FAIL $3"; failed=1; fi
}

for name in "$@"; do
    spec "$name" || { report "$name" 1 "unknown scenario"; continue; }
    missing=
    [[ $LISTENER == *SSL* || $LISTENER == MTLS ]] && ! has ssl && missing="ssl"
    [ "$MECH" = PLAIN ] && ! has sasl_plain && missing="$missing sasl_plain"
    [[ $MECH == SCRAM* ]] && ! has sasl_scram && missing="$missing sasl_scram"
    [ "$MECH" = OAUTHBEARER ] && ! has sasl_oauthbearer && missing="$missing sasl_oauthbearer"
    if [ -n "$missing" ]; then
        echo "RESULT $CLIENT $name PASS n/a: this kcat's librdkafka lacks$missing (builtin.features=$features)"
        continue
    fi
    if [ "$EXPECT" = n/a ]; then
        echo "RESULT $CLIENT $name PASS n/a: kcat cannot give librdkafka a token of its own (no oauth_cb); its builtin unsecured token is checked in oauth-unsecured"
        continue
    fi
    options
    err=$(mktemp)
    note=
    if [ "$EXPECT" = ok ] && [[ $MECH == SCRAM* ]] && [ $old_scram = 1 ]; then
        EXPECT=sasl
        note="n/a: librdkafka $librdkafka < 2.6.1 sends a SCRAM client-final nonce that Kafka 4.x refuses (librdkafka#4895); checked instead: refused as by Kafka 4.1:"
    fi
    if [ "$EXPECT" = ok ]; then
        topic=sec-kcat-$name-$RANDOM$RANDOM
        want=$(for i in 0 1 2 3 4; do echo "k$i=$name-$i"; done)
        # -P: the topic is auto-created; acks=all, delivery reports awaited at exit.
        for i in 0 1 2 3 4; do echo "k$i:$name-$i"; done |
            timeout 30 kcat "${OPTS[@]}" -P -t "$topic" -K: -X acks=all -X topic.request.required.acks=-1 2>"$err"
        p=$?
        got=$(timeout 30 kcat "${OPTS[@]}" -C -t "$topic" -p 0 -o beginning -e -q -f '%k=%s\n' 2>>"$err")
        c=$?
        [ $p -eq 0 ] && [ $c -eq 0 ] && [ "$got" = "$want" ]
        report "$name" $? "5 records via $LISTENER${MECH:+ $MECH}, topic $topic (produce exit $p, consume exit $c, got: $(echo $got)) $(head -c 300 "$err" | tr '\n' ' ')"
    else
        # -L: metadata; the broker's refusal is logged by librdkafka on stderr
        # and kcat gives up after -m seconds.
        timeout 30 kcat "${OPTS[@]}" -L -m 3 >/dev/null 2>"$err"
        status=$?
        if [ "$EXPECT" = sasl ]; then
            [ "$MECH" = PLAIN ] && msg=$PLAIN_REFUSED || msg=$SCRAM_REFUSED$MECH
            line=$(grep -m1 "SASL authentication error" "$err")
            [ $status -ne 0 ] && [ $status -ne 124 ] && [[ $line == *"SASL authentication error: $msg"* ]]
        else
            line=$(grep -m1 "SSL" "$err")
            [ $status -ne 0 ] && [ $status -ne 124 ] && [ -n "$line" ] && ! grep -q "SASL" "$err"
        fi
        report "$name" $? "${note:+$note }exit $status; $(echo "$line" | sed -E 's/^%[0-9]\|[0-9.]+\|[A-Z]+\|[^|]*\| \[thrd:[^]]*\]: //; s/after [0-9]+ms/after Nms/'); last: $(tail -n1 "$err")"
    fi
    rm -f "$err"
done
exit $failed
