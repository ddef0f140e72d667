"""confluent-kafka (librdkafka) over the TLS and SASL listeners.

    python confluent.py SCENARIO...

run.sh sets SEC_<LISTENER> (host:port of PLAINTEXT, SSL, SASL_PLAINTEXT,
SASL_SSL, MTLS), SEC_CA, SEC_CLIENT_CERT, SEC_CLIENT_KEY, and the RS256 tokens
SEC_JWT_GOOD / SEC_JWT_OTHER_KEY (files). OAUTHBEARER: librdkafka's own
unsecured token (sasl.oauthbearer.config=principal=alice), or an oauth_cb
returning a hand-made unsecured token or one of run.sh's signed tokens. One line
`RESULT confluent-kafka <scenario> PASS|FAIL detail` per scenario; every
wait has a deadline.
"""

import base64
import json
import logging
import os
import re
import sys
import time
import traceback
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

CLIENT = "confluent-kafka"
E = os.environ

# What Kafka 4.1 answers a refused SASL login (SaslAuthenticate error_message,
# with SASL_AUTHENTICATION_FAILED): PLAIN's own message, and one for SCRAM
# whether the user is unknown or the password wrong.
PLAIN_REFUSED = "Authentication failed: Invalid username or password"
SCRAM_REFUSED = "Authentication failed during authentication due to invalid credentials with SASL mechanism "
# ... and a refused OAUTHBEARER token (the error challenge Kafka's
# OAuthBearerSaslServer sent, after the client's %x01).
OAUTH_REFUSED = '{"status":"invalid_token"}'

# scenario -> (listener, SASL mechanism, user, password, client cert, expected outcome)
SCENARIOS = {
    "ssl": ("SSL", None, None, None, False, "ok"),
    "sasl-plaintext-plain": ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret", False, "ok"),
    "sasl-plaintext-scram-sha-256": ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "alice-secret", False, "ok"),
    "sasl-ssl-scram-sha-512": ("SASL_SSL", "SCRAM-SHA-512", "alice", "alice-secret", False, "ok"),
    "sasl-ssl-plain": ("SASL_SSL", "PLAIN", "admin", "admin-secret", False, "ok"),
    "mtls": ("MTLS", None, None, None, True, "ok"),
    "sasl-plain-wrong-password": ("SASL_PLAINTEXT", "PLAIN", "alice", "wrong-secret", False, "sasl"),
    "sasl-plain-unknown-user": ("SASL_SSL", "PLAIN", "mallory", "alice-secret", False, "sasl"),
    "sasl-scram-wrong-password": ("SASL_PLAINTEXT", "SCRAM-SHA-256", "alice", "wrong-secret", False, "sasl"),
    "sasl-scram-unknown-user": ("SASL_SSL", "SCRAM-SHA-512", "mallory", "alice-secret", False, "sasl"),
    "mtls-no-cert": ("MTLS", None, None, None, False, "tls"),
    # OAUTHBEARER: "user" names the token
    "oauth-unsecured": ("SASL_PLAINTEXT", "OAUTHBEARER", "builtin", None, False, "ok"),
    "oauth-expired": ("SASL_PLAINTEXT", "OAUTHBEARER", "expired", None, False, "sasl"),
    "oauth-jwks": ("SASL_SSL", "OAUTHBEARER", "SEC_JWT_GOOD", None, False, "ok"),
    "oauth-jwks-wrong-key": ("SASL_SSL", "OAUTHBEARER", "SEC_JWT_OTHER_KEY", None, False, "sasl"),
}


def unsecured_token(claims):
    """An unsecured JWS (alg none, empty signature), as Kafka's unsecured
    login module makes them."""
    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{b64({'alg': 'none'})}.{b64(claims)}."


def oauth(token):
    """OAUTHBEARER settings for token: librdkafka's builtin unsecured token,
    or an oauth_cb that returns (token, expiry, principal)."""
    c = {"sasl.mechanism": "OAUTHBEARER"}
    if token == "builtin":
        c.update({"enable.sasl.oauthbearer.unsecure.jwt": True, "sasl.oauthbearer.config": "principal=alice"})
        return c
    now = int(time.time())
    if token == "expired":
        # Issued two hours ago, expired an hour ago.
        value, exp = unsecured_token({"sub": "alice", "iat": now - 7200, "exp": now - 3600}), now + 3600
    else:
        value = open(E[token]).read().strip()
        exp = json.loads(base64.urlsafe_b64decode(value.split(".")[1] + "=="))["exp"]
    # The expiry given to librdkafka is in the future even for the expired
    # token: librdkafka would otherwise refresh it in a loop.
    c["oauth_cb"] = lambda _config: (value, exp, "alice")
    return c



def config(listener, mechanism, user, password, cert):
    protocol = "SSL" if listener == "MTLS" else listener
    c = {"bootstrap.servers": E["SEC_" + listener], "security.protocol": protocol}
    if "SSL" in protocol:
        c["ssl.ca.location"] = E["SEC_CA"]  # and the default ssl.endpoint.identification.algorithm=https
    if cert:
        c["ssl.certificate.location"] = E["SEC_CLIENT_CERT"]
        c["ssl.key.location"] = E["SEC_CLIENT_KEY"]
    if mechanism == "OAUTHBEARER":
        c.update(oauth(user))
    elif mechanism:
        c.update({"sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password})
    return c


def round_trip(name, conf):
    """A fresh topic, 5 keyed records produced and consumed back in a group."""
    topic = f"sec-ck-{name}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient(conf)
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=20)[topic].result(30)
    failed = []
    p = Producer({**conf, "linger.ms": 5, "acks": "all"})
    for i in range(5):
        p.produce(topic, key=f"k{i}", value=f"{name}-{i}",
                  on_delivery=lambda err, msg: err and failed.append(err))
    left = p.flush(30)
    assert left == 0 and not failed, f"produce: {left} not delivered, errors {failed}"
    c = Consumer({**conf, "group.id": topic, "auto.offset.reset": "earliest",
                  "session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    got = []
    try:
        c.subscribe([topic])
        deadline = time.monotonic() + 30
        while len(got) < 5 and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                raise KafkaException(m.error())
            got.append((m.key().decode(), m.value().decode()))
        c.commit(asynchronous=False)
    finally:
        c.close()
    want = [(f"k{i}", f"{name}-{i}") for i in range(5)]
    assert got == want, f"consumed {got}"
    return f"5 records via {conf['bootstrap.servers']} ({conf['security.protocol']}" + \
        (f" {conf['sasl.mechanism']}" if "sasl.mechanism" in conf else "") + f"), topic {topic}, group commit"


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def refused(name, conf, expect):
    """The broker refuses the client: the expected error reaches error_cb
    (15 s deadline), metadata never comes back. librdkafka's log lines go to
    a logger that keeps them off stderr."""
    errors, lines = [], _Lines()
    log = logging.getLogger(f"rdkafka.{name}")
    log.propagate = False
    log.addHandler(lines)
    conf = {**conf, "error_cb": errors.append, "logger": log,
            "reconnect.backoff.ms": 500, "reconnect.backoff.max.ms": 1000}
    if expect == "sasl":
        # _AUTHENTICATION "<broker>: SASL authentication error: <the broker's message> (after N ms in state AUTH_REQ)"
        mechanism = conf["sasl.mechanism"]
        want = "SASL authentication error: " + {"PLAIN": PLAIN_REFUSED, "OAUTHBEARER": OAUTH_REFUSED}.get(
            mechanism, SCRAM_REFUSED + mechanism)

        def expected(e):
            return e.code() == KafkaError._AUTHENTICATION and want in e.str()
    else:
        # a TLS alert from the broker: librdkafka reports an SSL error in the
        # handshake, or (TLS 1.3) on the first read after it
        def expected(e):
            return e.code() in (KafkaError._SSL, KafkaError._TRANSPORT) and "SSL" in e.str()
    p = Producer(conf)
    deadline = time.monotonic() + 15
    while not any(map(expected, errors)) and time.monotonic() < deadline:
        p.poll(0.2)  # serves error_cb
    try:
        md = p.list_topics(timeout=2)
        return False, f"metadata came back: brokers {list(md.brokers)}"
    except KafkaException as e:
        exc = e.args[0]
    p.poll(0.2)
    seen = [exc] + errors
    shown = {re.sub(r"after \d+ms", "after Nms", f"{e.name()}: {e.str()}") for e in seen}
    text = " | ".join(sorted(shown))
    ok = any(map(expected, seen))
    if expect == "tls":
        ok = ok and not any(e.code() == KafkaError._AUTHENTICATION for e in seen)
    return ok, text


def main(names):
    failed = 0
    for name in names:
        listener, mechanism, user, password, cert, expect = SCENARIOS[name]
        conf = config(listener, mechanism, user, password, cert)
        try:
            if expect == "ok":
                ok, detail = True, round_trip(name, conf)
            else:
                ok, detail = refused(name, conf, expect)
        except Exception as e:  # noqa: BLE001 - any failure is the scenario's
            ok, detail = False, f"{type(e).__name__}: {e}"
            traceback.print_exc()
        detail = " ".join(str(detail).split())
        print(f"RESULT {CLIENT} {name} {'PASS' if ok else 'FAIL'} {detail}", flush=True)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or list(SCENARIOS)))
