#!/usr/bin/env bash
# Starts the release binary on a free loopback port with a fresh data dir
# and checks, with kcat (librdkafka 2.0.2), that `kcat -L` lists the broker
# and a topic created through auto-creation.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=target/release/strom
data=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log="$data/strom.log"
"$bin" --listen "127.0.0.1:$port" --data-dir "$data/data" >"$log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT

deadline=$((SECONDS + 30))
until kcat -b "127.0.0.1:$port" -L -m 2 >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$pid" 2>/dev/null; then
        echo "kcat-check: broker did not answer"; cat "$log"; exit 1
    fi
done

fail() { echo "kcat-check: $*"; cat "$log"; exit 1; }

kcat -b "127.0.0.1:$port" -L -t kcat-check-topic -m 5 >/dev/null || fail "metadata for a new topic failed"
listing=$(kcat -b "127.0.0.1:$port" -L -m 5)
echo "$listing"
grep -q "broker 1 at 127.0.0.1:$port" <<<"$listing" || fail "broker not listed"
grep -q 'topic "kcat-check-topic" with 1 partitions' <<<"$listing" || fail "created topic not listed"

kill -TERM "$pid"
deadline=$((SECONDS + 20))
while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || fail "broker did not stop on SIGTERM"
    sleep 0.1
done
wait "$pid" && status=0 || status=$?
[ "$status" -eq 0 ] || fail "broker exited $status on SIGTERM"
grep -q "strom stopped" "$log" || fail "no clean-stop line in the log"
echo "kcat-check: ok"
