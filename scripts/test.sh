#!/usr/bin/env bash
# Runs every test strom has, after installing what they need.
#
#   scripts/test.sh
#
# 1. Installs (idempotently) the Debian packages the tests need; the client
#    suites install their own pip / npm / jar dependencies into caches.
# 2. Format and lint checks, the release build.
# 3. `cargo test`: unit tests, protocol-tests, compat (rdkafka, CLI, crash,
#    the Apache Kafka comparison: the Docker image, else the distribution
#    from ../shared/kafka as a process; the summary says which).
# 4. The client suites in compat/ against the release binary:
#    confluent-kafka / kafka-python / aiokafka, kcat (after python: its
#    transactions are written with the python venv), kafkajs, the Java
#    client, kafkajs, the Python clients and Kafka's CLI tools also against a
#    three-node cluster, the security suite (TLS, SASL PLAIN and SCRAM,
#    mutual TLS with four clients), Apache Kafka 4.1's own
#    tools, Kafka Connect and Kafka Streams
#    under exactly_once_v2, also against three nodes (from ../shared/kafka beside the repo; skip
#    without it), and librdkafka's own test suite (allowlist).
# Ends with a client x scenario table and one line "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
steps=()
results=$(mktemp)
trap 'rm -f "$results"' EXIT

record() { # record NAME STATUS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); steps+=("PASS  $1")
    else
        failed=$((failed + 1)); steps+=("FAIL  $1")
    fi
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    command -v kcat >/dev/null 2>&1 || missing+=(kcat)
    dpkg -s libzstd-dev >/dev/null 2>&1 || missing+=(libzstd-dev)
    dpkg -s pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    command -v unzip >/dev/null 2>&1 || missing+=(unzip)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        as_root apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

install_packages || { echo "package installation failed"; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check; record "cargo fmt --check" $?

echo "== cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings; record "cargo clippy -D warnings" $?

echo "== cargo build --release"
cargo build --release --quiet; build=$?
record "cargo build --release" $build

echo "== cargo test"
rm -f target/tmp/against-kafka.txt
test_log=$(mktemp)
cargo test --all-targets --no-fail-fast 2>&1 | tee "$test_log"
cargo_status=${PIPESTATUS[0]}
# Count individual cargo tests into the totals.
read -r cargo_passed cargo_failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) }
} END { print p + 0, f + 0 }' "$test_log")
passed=$((passed + cargo_passed)); failed=$((failed + cargo_failed))
if [ "$cargo_status" -ne 0 ] && [ "$cargo_failed" -eq 0 ]; then
    failed=$((failed + 1))   # a build or harness failure with no test counted
fi
steps+=("cargo test: $cargo_passed passed, $cargo_failed failed (exit $cargo_status)")
steps+=("against_kafka: $(cat target/tmp/against-kafka.txt 2>/dev/null || echo 'did not run')")
rm -f "$test_log"

# Each client suite prints RESULT lines; a suite that dies without them
# still counts as a failure.
run_suite() { # run_suite NAME TIMEOUT-SECONDS SCRIPT
    echo "== $1"
    local log status
    log=$(mktemp)
    timeout "$2" bash "$3" 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
    grep '^RESULT ' "$log" >>"$results"
    if ! grep -q '^RESULT ' "$log"; then
        record "$1 (no results, exit $status)" 1
    elif [ "$status" -ne 0 ] && ! grep -q '^RESULT .* FAIL' "$log"; then
        record "$1 (exit $status after its results)" 1
    fi
    rm -f "$log"
}

if [ "$build" -eq 0 ]; then
    scripts/kcat-check.sh; record "kcat -L against the release binary" $?
    # python before kcat: kcat's txn-read-committed writes its transactions
    # with confluent-kafka from the venv the python suite installs.
    run_suite python 900 compat/python/run.sh
    run_suite kcat 300 compat/kcat/run.sh
    run_suite kafkajs 600 compat/kafkajs/run.sh
    run_suite java 900 compat/java/run.sh
    run_suite clients-3-nodes 900 compat/cluster/clients.sh
    run_suite security 600 compat/security/run.sh
    run_suite kafka-tools 300 compat/kafka-tools/run.sh
    run_suite connect 300 compat/connect/run.sh
    run_suite streams 300 compat/streams/run.sh
    STREAMS_TARGET=cluster run_suite streams-3-nodes 400 compat/streams/run.sh
    run_suite librdkafka 1800 compat/librdkafka/run.sh
else
    record "client suites (no release binary)" 1
fi

read -r suite_passed suite_failed < <(awk '$4 == "PASS" { p++ } $4 == "FAIL" { f++ } END { print p + 0, f + 0 }' "$results")
passed=$((passed + suite_passed)); failed=$((failed + suite_failed))

echo
echo "== summary"
printf '%s\n' "${steps[@]}"
python3 - "$results" <<'EOF'
import sys
rows, clients = {}, []
librdkafka = {"PASS": 0, "FAIL": 0}
failures = []
for line in open(sys.argv[1]):
    parts = line.split(maxsplit=4)
    if len(parts) < 4:
        continue
    _, client, scenario, status = parts[:4]
    if status not in ("PASS", "FAIL"):
        continue
    if status == "FAIL":
        failures.append(line.strip())
    if client == "librdkafka":
        librdkafka[status] += 1
        continue
    if client not in clients:
        clients.append(client)
    detail = parts[4] if len(parts) > 4 else ""
    mark = "n/a" if detail.startswith("n/a") else ("ok" if status == "PASS" else "FAIL")
    rows.setdefault(scenario, {})[client] = mark
if rows:
    width = max(len(s) for s in rows) + 2
    print()
    print("scenario".ljust(width) + "".join(c.ljust(16) for c in clients))
    for scenario, marks in rows.items():
        print(scenario.ljust(width) + "".join(marks.get(c, "-").ljust(16) for c in clients))
print(f"\nlibrdkafka test suite (allowlist): {librdkafka['PASS']} passed, {librdkafka['FAIL']} failed")
for failure in failures:
    print(failure)
EOF
echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
