"""confluent-kafka (librdkafka) against a broker with Kafka's StandardAuthorizer.

    python acls.py                 # every scenario, after acls.sh's kafka-acls.sh steps
    python acls.py --after-reload  # one produce over MTLS (acls.sh's cert-reload)

acls.sh sets ACL_PLAINTEXT, ACL_SASL_PLAINTEXT, ACL_MTLS, ACL_MAPPED
(host:port) and ACL_CERTS (ca.pem, alice.crt/key, mallory.crt/key). When
this runs, kafka-acls.sh has added: User:alice Write+Read on topic
acl-orders and Read on group acl-g, User:bob PREFIXED Read on topic acl-
(his Describe was removed again), User:CN=alice,OU=eng,O=strom Write on
topic acl-mtls. The admin steps here run over PLAINTEXT (User:ANONYMOUS, a
super user). One line `RESULT <acls|tls> <scenario> PASS|FAIL detail` per
scenario; every wait has a deadline.
"""

import os
import sys
import time
import traceback
import uuid

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)

E = os.environ
CERTS = E.get("ACL_CERTS", "")
TOPIC_AUTH = KafkaError.TOPIC_AUTHORIZATION_FAILED
GROUP_AUTH = KafkaError.GROUP_AUTHORIZATION_FAILED
RUN = uuid.uuid4().hex[:6]


def conf(listener, user=None, cert=None):
    """A client config: SASL_PLAINTEXT PLAIN as user, or TLS with cert's key."""
    c = {"bootstrap.servers": E["ACL_" + listener]}
    if listener == "SASL_PLAINTEXT":
        c.update({"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                  "sasl.username": user, "sasl.password": f"{user}-secret"})
    elif listener in ("MTLS", "MAPPED"):
        c.update({"security.protocol": "SSL", "ssl.ca.location": f"{CERTS}/ca.pem",
                  "ssl.certificate.location": f"{CERTS}/{cert}.crt", "ssl.key.location": f"{CERTS}/{cert}.key"})
    return c


def who(c):
    if "sasl.username" in c:
        return f"{c['sasl.username']} over SASL_PLAINTEXT"
    if "ssl.certificate.location" in c:
        return f"cert {os.path.basename(c['ssl.certificate.location'])} over {c['bootstrap.servers']}"
    return "ANONYMOUS over PLAINTEXT"


def err_text(e):
    return f"{e.name()} ({e.code()}): {e.str()}"


def produce(c, topic, n, tag):
    """n records to topic; returns (offsets delivered, errors of the rest)."""
    delivered, errors = [], []

    def report(err, msg):
        if err:
            errors.append(err)
        else:
            delivered.append(msg.offset())

    p = Producer({**c, "linger.ms": 5, "acks": "all", "message.timeout.ms": 15000,
                  "error_cb": lambda e: None})
    for i in range(n):
        p.produce(topic, key=f"{tag}-{i}", value=f"{tag}-{i}-{RUN}", on_delivery=report)
    left = p.flush(30)
    assert left == 0, f"{left} records neither delivered nor failed in 30 s"
    return delivered, errors


def produce_ok(c, topic, n, tag):
    delivered, errors = produce(c, topic, n, tag)
    assert not errors and len(delivered) == n, \
        f"produce to {topic} as {who(c)}: {len(delivered)} delivered, errors {sorted({err_text(e) for e in errors})}"
    return f"{who(c)}: {n} records to {topic} at offsets {delivered}"


def produce_refused(c, topic, tag):
    delivered, errors = produce(c, topic, 2, tag)
    assert not delivered, f"produce to {topic} as {who(c)} was delivered at {delivered}"
    assert errors and all(e.code() == TOPIC_AUTH for e in errors), \
        f"produce to {topic} as {who(c)}: errors {sorted({err_text(e) for e in errors})}"
    return f"{who(c)} to {topic} refused: " + "; ".join(sorted({err_text(e) for e in errors}))


def consume(c, topic, group, want, timeout=30, stop_on_error=True):
    """Consume in group from the group's committed offset (earliest without
    one) until want records came; commits. Returns (records, errors)."""
    errors = []
    cons = Consumer({**c, "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                     "error_cb": errors.append})
    got = []
    try:
        cons.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(got) < want and time.monotonic() < deadline:
            m = cons.poll(0.3)
            if m is None:
                if errors and stop_on_error:
                    break
                continue
            if m.error():
                errors.append(m.error())
                if stop_on_error and not m.error().retriable() and m.error().code() != KafkaError._PARTITION_EOF:
                    break
                continue
            got.append((m.key().decode(), m.offset()))
        if got:
            cons.commit(asynchronous=False)
    finally:
        cons.close()
    return got, errors


def consume_refused(c, topic, group, code, text="", timeout=15):
    """The consumer is refused with code, its message containing text."""
    got, errors = consume(c, topic, group, 1, timeout)
    assert not got, f"{who(c)} consumed {got} from {topic} in group {group}"
    names = sorted({err_text(e) for e in errors})
    assert any(e.code() == code and text in e.str() for e in errors), \
        f"{who(c)} in group {group}: no {KafkaError(code).name()} saying {text!r} within {timeout} s; errors {names}"
    return f"{who(c)} consuming {topic} in group {group} refused: " + "; ".join(names)


def admin():
    return AdminClient(conf("PLAINTEXT"))


def topics_of(c):
    """The topic names a listing of all topics shows the client."""
    a = AdminClient(c)
    md = a.list_topics(timeout=15)
    return sorted(t for t in md.topics if not t.startswith("__")), sorted(md.topics)


# ---- scenarios -------------------------------------------------------------------

ALICE = conf("SASL_PLAINTEXT", "alice")
BOB = conf("SASL_PLAINTEXT", "bob")


def setup():
    a = admin()
    fs = a.create_topics([NewTopic(t, 1, 1) for t in ("acl-orders", "acl-other", "acl-mtls")], request_timeout=20)
    for t, f in fs.items():
        f.result(30)
    # bob may read in group acl-bob-g (and, by the prefixed ACL, the acl- topics)
    binding = AclBinding(ResourceType.GROUP, "acl-bob-g", ResourcePatternType.LITERAL, "User:bob", "*",
                         AclOperation.READ, AclPermissionType.ALLOW)
    for f in a.create_acls([binding], request_timeout=20).values():
        f.result(30)
    # the topics' leaders are known before the clients start
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        md = a.list_topics(timeout=10)
        if all(t in md.topics and md.topics[t].partitions and md.topics[t].partitions[0].leader >= 0
               for t in ("acl-orders", "acl-other", "acl-mtls")):
            break
        time.sleep(0.2)


def alice_produce():
    return produce_ok(ALICE, "acl-orders", 3, "alice")


def alice_produce_refused():
    return produce_refused(ALICE, "acl-other", "alice")


def alice_consume():
    got, errors = consume(ALICE, "acl-orders", "acl-g", 3)
    assert [k for k, _ in got] == ["alice-0", "alice-1", "alice-2"], \
        f"consumed {got}, errors {sorted({err_text(e) for e in errors})}"
    return f"{who(ALICE)}: group acl-g read {got} from acl-orders, committed"


def alice_group_refused():
    # FindCoordinator refuses the group; Kafka's error_message is Errors.GROUP_AUTHORIZATION_FAILED's
    # "Group authorization failed.", which librdkafka shows ("FindCoordinator response error: ...")
    return consume_refused(ALICE, "acl-orders", "other-g", GROUP_AUTH, "Group authorization failed")


def alice_metadata():
    user_topics, all_topics = topics_of(ALICE)
    assert all_topics == ["acl-orders"], f"alice's listing shows {all_topics}"
    # a topic asked for by name that alice may not describe
    md = AdminClient(ALICE).list_topics(topic="acl-other", timeout=15)
    t = md.topics.get("acl-other")
    named = err_text(t.error) if t is not None and t.error is not None else f"no error ({t})"
    assert t is not None and t.error is not None and t.error.code() == TOPIC_AUTH, f"acl-other by name: {named}"
    _, admin_topics = topics_of(conf("PLAINTEXT"))
    return (f"alice's listing: {all_topics} (the super user's: {admin_topics}); "
            f"acl-other asked by name: {named}")


def bob_prefixed_read():
    got, errors = consume(BOB, "acl-orders", "acl-bob-g", 3)
    assert [k for k, _ in got] == ["alice-0", "alice-1", "alice-2"], \
        f"consumed {got}, errors {sorted({err_text(e) for e in errors})}"
    _, listing = topics_of(BOB)
    assert listing == ["acl-mtls", "acl-orders", "acl-other"], f"bob's listing shows {listing}"
    return f"{who(BOB)}: group acl-bob-g read {got} from acl-orders; bob's listing (prefixed Read): {listing}"


def bob_write_refused():
    return produce_refused(BOB, "acl-orders", "bob")


DENY = AclBinding(ResourceType.TOPIC, "acl-orders", ResourcePatternType.LITERAL, "User:alice", "*",
                  AclOperation.READ, AclPermissionType.DENY)


def deny_read():
    produced = produce_ok(ALICE, "acl-orders", 2, "after-deny")  # Write is still allowed
    a = admin()
    for f in a.create_acls([DENY], request_timeout=20).values():
        f.result(30)
    listed = a.describe_acls(AclBindingFilter(ResourceType.TOPIC, "acl-orders", ResourcePatternType.LITERAL,
                                              "User:alice", None, AclOperation.ANY, AclPermissionType.DENY),
                             request_timeout=20).result(30)
    assert len(listed) == 1, f"describe_acls lists {listed}"
    refused = consume_refused(ALICE, "acl-orders", "acl-g", TOPIC_AUTH)
    return f"{produced}; DENY READ added (describe_acls: {listed[0]}); {refused}"


def deny_removed():
    a = admin()
    deleted = [str(b) for f in a.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, "acl-orders", ResourcePatternType.LITERAL, "User:alice", None,
        AclOperation.READ, AclPermissionType.DENY)], request_timeout=20).values() for b in f.result(30)]
    assert len(deleted) == 1, f"delete_acls deleted {deleted}"
    # The two records produced under the DENY, from the group's committed offset 3.
    got, errors = consume(ALICE, "acl-orders", "acl-g", 2, stop_on_error=False)
    assert [k for k, _ in got] == ["after-deny-0", "after-deny-1"], \
        f"consumed {got}, errors {sorted({err_text(e) for e in errors})}"
    early = f" (before: {sorted({err_text(e) for e in errors})})" if errors else ""
    return f"delete_acls deleted {deleted}; {who(ALICE)}: group acl-g read {got}{early}"


ALICE_MTLS = conf("MTLS", cert="alice")


def mtls_principal():
    # User:CN=alice,OU=eng,O=strom may write acl-mtls; it is not User:alice, who may write acl-orders
    ok = produce_ok(ALICE_MTLS, "acl-mtls", 2, "mtls")
    no = produce_refused(ALICE_MTLS, "acl-orders", "mtls")
    return f"{ok}; {no}"


def mtls_unknown_cert_refused():
    return produce_refused(conf("MTLS", cert="mallory"), "acl-mtls", "mallory")


def mapped_principal():
    # RULE:^CN=(.*?),OU=.*$/$1/L: alice's cert is User:alice on MAPPED
    c = conf("MAPPED", cert="alice")
    ok = produce_ok(c, "acl-orders", 1, "mapped")
    no = produce_refused(c, "acl-mtls", "mapped")
    return f"{ok}; {no}"


SCENARIOS = [
    ("acls", "alice-produce", alice_produce),
    ("acls", "alice-produce-refused", alice_produce_refused),
    ("acls", "alice-consume", alice_consume),
    ("acls", "alice-group-refused", alice_group_refused),
    ("acls", "alice-metadata", alice_metadata),
    ("acls", "bob-prefixed-read", bob_prefixed_read),
    ("acls", "bob-write-refused", bob_write_refused),
    ("acls", "deny-read", deny_read),
    ("acls", "deny-removed", deny_removed),
    ("tls", "mtls-principal", mtls_principal),
    ("tls", "mtls-unknown-cert-refused", mtls_unknown_cert_refused),
    ("tls", "mapped-principal", mapped_principal),
]


def main(args):
    if args == ["--after-reload"]:
        try:
            print("OK " + produce_ok(ALICE_MTLS, "acl-mtls", 1, "reloaded"))
            return 0
        except Exception as e:  # noqa: BLE001
            print(f"FAILED {type(e).__name__}: {e}")
            return 1
    try:
        setup()
    except Exception as e:  # noqa: BLE001
        traceback.print_exc()
        for client, name, _ in SCENARIOS:
            print(f"RESULT {client} {name} FAIL setup (topics, bob's group ACL): {type(e).__name__}: {e}", flush=True)
        return 1
    failed = 0
    for client, name, fn in SCENARIOS:
        t0 = time.monotonic()
        try:
            ok, detail = True, fn()
        except Exception as e:  # noqa: BLE001 - any failure is the scenario's
            ok, detail = False, f"{type(e).__name__}: {e}"
            traceback.print_exc()
        detail = " ".join(str(detail).split())
        print(f"RESULT {client} {name} {'PASS' if ok else 'FAIL'} {detail} ({time.monotonic() - t0:.1f}s)", flush=True)
        failed += not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
