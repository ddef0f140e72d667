#!/usr/bin/env bash
# Benchmarks the release `strom` binary with librdkafka's rdkafka_performance
# and scripts/latency.rs, next to the Apache Kafka 4.1 reference numbers and
# strom's targets. Prints one table; writes the same numbers as JSON.
#
#   scripts/bench.sh [RESULTS.json]      # default: bench-results.json in the repo root
#   STROM_BENCH_REPEAT=1 scripts/bench.sh   # one run per throughput (default 3, median)
#   STROM_BENCH_LINGER_MS=1000 scripts/bench.sh  # rdkafka_performance's own linger (default 5)
#
# Steps (each under a timeout; about 1-2 minutes after the builds):
#   1. cargo build --release, the `latency` example, and librdkafka 2.0.2's
#      examples/rdkafka_performance (Debian source, via compat/librdkafka/setup.sh).
#   2. Start to first answered ApiVersions: spawn the binary, retry an
#      ApiVersions request until it answers (median of 5, fresh data dirs).
#   3. One broker on a fresh data dir and free port (compat/lib/broker.sh):
#      idle RSS; produce 1M x 100 B acks=1 / acks=all+idempotence / lz4;
#      300k x 1 KB acks=1; consume 1M x 100 B; latency at 5,000 msg/s for
#      20 s (acks=all); 8 producers x 64 partitions; RSS after the runs and
#      its high-water mark (VmHWM). Each throughput is run $STROM_BENCH_REPEAT
#      times (fresh topic per producer run); the table shows the median run
#      and the JSON keeps every run. Numbers on a shared 2-core machine are
#      noisy: compare runs, not single digits.
#   4. Group coordinator, strom beside Apache Kafka 4.1.0 measured in the same
#      run (../shared/kafka/kafka_2.13-4.1.0.tgz beside the repo, unpacked
#      into the cache by compat/lib/kafka.sh; the Kafka column says n/a
#      without it), both driven by scripts/commit_bench.rs: synchronous
#      OffsetCommit throughput of 4 clients x 10 s; a history of 1,000,000
#      commits over 10,000 groups (pipelined, 64 connections), SIGTERM, restart, and the time
#      from process start until OffsetFetch answers the last offset for 2
#      groups of each of the 50 __consumer_offsets partitions; for strom also
#      after compaction (restarted with log.cleaner.backoff.ms=100 and
#      log.cleaner.min.cleanable.ratio=0.01 until __consumer_offsets shrinks
#      to half, 90 s deadline; reported as not run when it does not).
#      Both brokers use offsets.topic.segment.bytes=1048576 so that the
#      history spans closed segments the cleaner may compact.
#      STROM_BENCH_HIST_GROUPS / STROM_BENCH_HIST_COMMITS (10000 / 100) size
#      the history.
#   5. Transactions, strom beside Apache Kafka 4.1.0 measured in the same run
#      (a fresh broker each; Kafka started once for this step from the same
#      tarball), both driven by scripts/txn_bench.rs (librdkafka through the
#      rdkafka crate): transactions/s of 4 transactional producers (own
#      transactional.id and partition each) committing transactions of 10
#      records x 100 B for 10 s; 1,000,000 x 100 B produced in committed
#      transactions of 1,000 records (that produce rate is shown too), then
#      consumed from the beginning with isolation.level=read_committed
#      ($STROM_BENCH_REPEAT runs, median), msgs/s.
#   6. Three nodes, strom beside Apache Kafka 4.1.0 measured in the same run
#      (compat/lib/cluster.sh and start_kafka_cluster from compat/lib/kafka.sh;
#      replication factor 3, min.insync.replicas=2): 1M x 100 B produced with
#      acks=all and idempotence ($STROM_BENCH_REPEAT runs); end-to-end latency
#      at 5,000 msg/s for 20 s; the failover a producer sees: 1,000 msg/s
#      acks=all for 30 s with the partition's leader SIGKILLed 10 s in, the
#      longest time without an acknowledgement (no message may be lost).
#   7. TLS and SASL, strom beside Apache Kafka 4.1.0 measured in the same run,
#      both started from the same server.properties lines: a PLAINTEXT and a
#      SASL_SSL listener (SASL PLAIN; PEM keystore with a throwaway CA and
#      broker cert made with openssl). rdkafka_performance produces 1M x 100 B
#      acks=1 and consumes it from the beginning over each listener
#      ($STROM_BENCH_REPEAT runs each, listeners alternating; the client
#      verifies the broker cert); the broker's CPU time per run is in the
#      JSON, and SASL_SSL's throughput as a fraction of PLAINTEXT's is a row.
#      STROM_BENCH_SECURITY_MESSAGES sizes it (default 1000000).
#   STROM_BENCH_STEPS picks steps by name, comma-separated (default all):
#   broker (2 and 3), coordinator (4), transactions (5), cluster (6),
#   security (7); e.g. STROM_BENCH_STEPS=transactions runs only step 5.
#   STROM_BIN=/path/to/strom uses that binary and skips its cargo build;
#   the load-tool examples are built only for the steps that use them.
# Exit status: 0 when every step ran (targets missed or not), 1 otherwise.
# The broker log and every client's output are kept under a temp dir whose
# path is printed when a step fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=${1:-$ROOT/bench-results.json}
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

# STROM_BIN set by the caller: that strom binary is used as it is (no cargo
# build of the broker); otherwise target/release/strom, built first.
STROM_BIN_GIVEN=${STROM_BIN:-}
export STROM_ROOT=$ROOT STROM_BIN=${STROM_BIN:-$ROOT/target/release/strom}
# shellcheck source=../compat/lib/broker.sh
source "$ROOT/compat/lib/broker.sh"
# shellcheck source=../compat/lib/kafka.sh
source "$ROOT/compat/lib/kafka.sh"
# shellcheck source=../compat/lib/tls.sh
source "$ROOT/compat/lib/tls.sh"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/strom-bench.XXXXXX")
REPEAT=${STROM_BENCH_REPEAT:-3} # runs per throughput measurement; the median is reported
# rdkafka_performance sets linger.ms=1000 itself, so every run would end with
# the last, partial batch idling for up to a second (1M x 100 B: ~1.25 s of
# which ~1 s is that wait). Producers here use librdkafka's own default
# (and the Java client's since Kafka 4.0): 5 ms.
LINGER=${STROM_BENCH_LINGER_MS:-5}
RAW=$WORK/raw.jsonl # one JSON object per measurement, rendered at the end
: >"$RAW"
FAILED=0
BG_PIDS=()

# fd 4: the script's stderr, also from a signal trap run while a command's
# output is redirected to a file.
exec 4>&2
log() { printf '== %s\n' "$*" >&4; }
fail() { printf 'bench: FAIL: %s\n' "$*" >&4; FAILED=1; }

# Stops the broker: SIGTERM, up to 15 s, then SIGKILL; keeps its log.
stop_bench_broker() {
    [ -n "${STROM_PID:-}" ] || return 0
    cp "$STROM_DATA/strom.log" "$WORK/strom.log" 2>/dev/null || true
    kill -TERM "$STROM_PID" 2>/dev/null || true
    local i
    for i in $(seq 150); do
        kill -0 "$STROM_PID" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$STROM_PID" 2>/dev/null; then
        fail "broker did not exit within 15 s of SIGTERM; killed"
        kill -KILL "$STROM_PID" 2>/dev/null || true
    fi
    stop_broker
}

cleanup() {
    local p
    for p in "${BG_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    stop_bench_broker
    stop_coord_strom
    if [ -n "${KAFKA_HOME:-}" ]; then stop_kafka >&4 2>&1; fi
    if [ "$FAILED" -eq 0 ]; then rm -rf "$WORK"; else echo "bench: logs kept in $WORK" >&4; fi
}
trap cleanup EXIT
trap 'FAILED=1; exit 130' INT TERM

# bg CMD...: runs CMD in the background and waits for it, so that a signal to
# this script is handled at once (cleanup stops CMD). Returns CMD's status.
bg() {
    "$@" &
    local pid=$! rc p keep=()
    BG_PIDS+=("$pid")
    wait "$pid"
    rc=$?
    for p in "${BG_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    BG_PIDS=("${keep[@]}")
    return $rc
}

# The coordinator step's strom: its own data dir, kept across restarts.
COORD_PID=
stop_coord_strom() {
    [ -n "${COORD_PID:-}" ] || return 0
    kill -TERM "$COORD_PID" 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while kill -0 "$COORD_PID" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            fail "coordinator-step strom did not exit within 30 s of SIGTERM; killed"
            kill -KILL "$COORD_PID" 2>/dev/null || true
            break
        fi
        sleep 0.05
    done
    wait "$COORD_PID" 2>/dev/null || true
    COORD_PID=
}

# ---------------------------------------------------------------- helpers (python)
cat >"$WORK/helper.py" <<'PY'
import json, os, re, signal, socket, statistics, struct, subprocess, sys, tempfile, time

# SIGTERM (timeout, the script's cleanup) runs the finally blocks: no stray broker.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def kstr(s):
    b = s.encode(); return struct.pack(">h", len(b)) + b

def request(api_key, version, corr, body):
    hdr = struct.pack(">hhi", api_key, version, corr) + kstr("strom-bench")
    msg = hdr + body
    return struct.pack(">i", len(msg)) + msg

def read_frame(sock):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)

def api_versions_once(host, port, timeout):
    """One ApiVersions v0 round trip; True when answered with error_code 0."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(request(18, 0, 7, b""))
        resp = read_frame(s)
        corr, err = struct.unpack(">ih", resp[:6])
        return corr == 7 and err == 0

def startup(binary, trials):
    """Wall time from spawn to the first answered ApiVersions, per trial."""
    times = []
    for _ in range(trials):
        d = tempfile.mkdtemp(prefix="strom-bench-start.")
        port = free_port()
        log = open(os.path.join(d, "strom.log"), "wb")
        t0 = time.perf_counter()
        p = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data-dir", os.path.join(d, "data")],
                             stdout=log, stderr=subprocess.STDOUT)
        answered = None
        try:
            while time.perf_counter() - t0 < 30:
                try:
                    if api_versions_once("127.0.0.1", port, 2.0):
                        answered = time.perf_counter(); break
                except OSError:
                    if p.poll() is not None:
                        break
                    time.sleep(0.0002)
        finally:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill(); p.wait()
            log.close()
        if answered is None:
            sys.stderr.write(open(os.path.join(d, "strom.log")).read())
            raise SystemExit("strom did not answer ApiVersions within 30 s")
        subprocess.run(["rm", "-rf", d])
        times.append((answered - t0) * 1000)
    print(json.dumps({"kind": "startup", "trials_ms": [round(t, 2) for t in times],
                      "median_ms": round(statistics.median(times), 2)}))

def create_topic(bootstrap, name, partitions, replicas=1):
    """CreateTopics v2 (the lowest version Kafka 4.1 serves), to the first
    broker of the list."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    body = struct.pack(">i", 1) + kstr(name) + struct.pack(">ihii", partitions, replicas, 0, 0)
    body += struct.pack(">ib", 30000, 0)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(request(19, 2, 11, body))
        resp = read_frame(s)
    _corr, _throttle, n = struct.unpack(">iii", resp[:12])
    off = 12
    (ln,) = struct.unpack(">h", resp[off:off + 2]); off += 2 + ln
    (err,) = struct.unpack(">h", resp[off:off + 2])
    if n != 1 or err not in (0, 36):
        raise SystemExit(f"CreateTopics {name}: error code {err}")

PRODUCED = re.compile(r"% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset (-?\d+), (\d+) failed\) "
                      r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s, (\d+) produce failures")
CONSUMED = re.compile(r"% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")

def parse_perf(mode, path, expect):
    """The last summary line of an rdkafka_performance run."""
    text = open(path, errors="replace").read()
    if mode == "P":
        m = PRODUCED.findall(text)
        if not m:
            return None
        msgs, byts, dr, _off, failed, ms, rate, mbs, _txerr = m[-1]
        ok = int(dr) == expect and int(failed) == 0
        return {"messages": int(dr), "failed": int(failed), "ms": int(ms), "msgs_per_s": int(rate),
                "mb_per_s": float(mbs), "complete": ok}
    m = CONSUMED.findall(text)
    if not m:
        return None
    msgs, byts, ms, rate, mbs = m[-1]
    return {"messages": int(msgs), "ms": int(ms), "msgs_per_s": int(rate), "mb_per_s": float(mbs),
            "complete": int(msgs) == expect}

def cmd_perf(args):
    kind, mode, path, expect, wall, run = args[0], args[1], args[2], int(args[3]), float(args[4]), int(args[5])
    r = parse_perf(mode, path, expect)
    if r is None:
        print(json.dumps({"kind": kind, "run": run, "error": "no summary line"})); return
    r["kind"] = kind; r["run"] = run; r["wall_s"] = round(wall, 3)
    print(json.dumps(r))

def cmd_parallel(args):
    kind, wall, expect_each, run, paths = args[0], float(args[1]), int(args[2]), int(args[3]), args[4:]
    runs = [parse_perf("P", p, expect_each) for p in paths]
    total = sum(r["messages"] for r in runs if r)
    complete = all(r and r["complete"] for r in runs)
    print(json.dumps({"kind": kind, "run": run, "producers": len(paths), "messages": total, "wall_s": round(wall, 3),
                      "msgs_per_s": int(total / wall) if wall > 0 else 0,
                      "mb_per_s": round(total * 100 / wall / 1e6, 2) if wall > 0 else 0,
                      "sum_of_reported_msgs_per_s": sum(r["msgs_per_s"] for r in runs if r),
                      "complete": complete}))

# ------------------------------------------------------------------ report
KAFKA = "Apache Kafka 4.1 (issue)"

def fmt_int(x):
    return f"{x:,.0f}"

def report(raw_path, out_path, meta_json):
    raw, runs = {}, {}
    for line in open(raw_path):
        line = line.strip()
        if line:
            o = json.loads(line)
            if "run" in o:
                runs.setdefault(o["kind"], []).append(o)
            else:
                raw[o["kind"]] = o
    # A repeated throughput: the median run by msgs/s; an error in any run wins.
    for kind, rs in runs.items():
        bad = [r for r in rs if "error" in r or not r.get("complete")]
        if bad:
            raw[kind] = dict(bad[0], runs=rs)
        else:
            ordered = sorted(rs, key=lambda r: r["msgs_per_s"])
            raw[kind] = dict(ordered[(len(ordered) - 1) // 2], runs=rs)
    meta = json.loads(meta_json)
    rows, metrics = [], []
    steps = meta.get("steps", "all")
    def on(step):  # the steps STROM_BENCH_STEPS selected get rows
        return steps == "all" or step in steps.split(",")

    def add(mid, label, value, unit, shown, kafka, kafka_shown, target_op, target, target_shown, extra=None):
        passed = None
        if value is not None and target is not None:
            passed = value >= target if target_op == ">=" else value < target
        metrics.append({"id": mid, "label": label, "value": value, "unit": unit,
                        "kafka_4_1": kafka, "target": ({"op": target_op, "value": target} if target is not None else None),
                        "pass": passed, **(extra or {})})
        verdict = "-" if passed is None else ("PASS" if passed else "MISS")
        if value is None:
            verdict = "n/a" if str(shown).startswith("n/a") else "ERROR"
        rows.append((label, shown, kafka_shown, target_shown, verdict))

    def tput(mid, label, kafka_msgs, kafka_mb):
        r = raw.get(mid)
        ok = r is not None and "error" not in r and r.get("complete", False)
        v = r["msgs_per_s"] if ok else None
        shown = f"{fmt_int(r['msgs_per_s'])} msg/s ({r['mb_per_s']:.1f} MB/s)" if ok else "error"
        if r is not None and "error" not in r and not r.get("complete", False):
            shown = f"incomplete: {r.get('messages')} msgs"
        if kafka_msgs:
            kshown = f"{fmt_int(kafka_msgs)} msg/s ({kafka_mb} MB/s)"
            target = 2 * kafka_msgs
            tshown = f">= {fmt_int(target)} msg/s"
            ratio = {"x_kafka": round(v / kafka_msgs, 2)} if v else {}
        else:
            kshown, target, tshown, ratio = "n/a", None, "-", {}
        if ratio:
            shown += f" = {ratio['x_kafka']}x"
        every = [x["msgs_per_s"] for x in (r or {}).get("runs", []) if "msgs_per_s" in x]
        if ok and len(every) > 1:
            shown += f"; runs {min(every) / 1000:,.0f}k-{max(every) / 1000:,.0f}k"
        add(mid, label, v, "msg/s", shown, kafka_msgs, kshown, ">=", target, tshown,
            {"mb_per_s": r.get("mb_per_s") if r else None, "runs_msgs_per_s": every, **ratio, "raw": r})

    if on("broker"):
        tput("produce_100b_acks1", "produce 1M x 100 B, acks=1", 380000, 38)
        tput("produce_100b_idempotent", "produce 1M x 100 B, acks=all+idempotence", 380000, 38)
        tput("produce_100b_lz4", "produce 1M x 100 B, acks=1, lz4", None, None)
        tput("produce_1kb_acks1", "produce 300k x 1 KB, acks=1", 123000, 126)
        tput("consume_100b", "consume 1M x 100 B from beginning", 2300000, 234)
        tput("produce_8x64", "8 producers x 64 partitions, 100 B, acks=1", None, None)

        lat = raw.get("latency")
        ok = lat is not None and "error" not in lat and lat.get("received") == lat.get("sent")
        if ok:
            shown = f"p50 {lat['p50_ms']} / p99 {lat['p99_ms']} / p99.9 {lat['p999_ms']} / max {lat['max_ms']} ms"
        else:
            shown = "error" if lat is None or "error" in lat else f"lost {lat['sent'] - lat['received']} msgs"
        add("latency_p99_ms", "e2e latency, 5,000 msg/s x 20 s, acks=all", lat["p99_ms"] if ok else None, "ms",
            shown, None, "n/a", "<", 10, "p99 < 10 ms", {"raw": lat})

        rss = raw.get("rss", {})
        def mb(kb):
            return None if kb is None else round(kb / 1024, 1)
        idle = mb(rss.get("idle_rss_kb"))
        add("rss_idle_mb", "broker RSS idle (after start)", idle, "MB",
            f"{idle} MB" if idle is not None else "error", 340, "340 MB", "<", 30, "< 30 MB")
        after, hwm = mb(rss.get("after_rss_kb")), mb(rss.get("peak_hwm_kb"))
        add("rss_peak_mb", "broker RSS peak (VmHWM) / after the runs", hwm, "MB",
            f"{hwm} MB / {after} MB" if hwm is not None else "error", 970, "970 MB after runs", "<", 200, "peak < 200 MB",
            {"after_runs_mb": after})

    def pair(kind):
        return raw.get(f"{kind}_strom"), raw.get(f"{kind}_kafka")
    def good(r, field):
        return r is not None and "error" not in r and r.get(field) is not None

    # Group coordinator: strom and Kafka measured in this run.
    if on("coordinator"):
        ts, tk = pair("commit_tput")
        sv = ts["commits_per_s"] if good(ts, "commits_per_s") else None
        kv = tk["commits_per_s"] if good(tk, "commits_per_s") else None
        kshown = f"{fmt_int(kv)} commits/s (measured here)" if kv else (tk or {}).get("error", "n/a")
        shown = f"{fmt_int(sv)} commits/s" if sv else (ts or {}).get("error", "error")
        ratio = {"x_kafka": round(sv / kv, 2)} if sv and kv else {}
        if ratio:
            shown += f" = {ratio['x_kafka']}x"
        add("offset_commit_sync_per_s", "OffsetCommit sync, 4 clients x 10 s", sv, "commits/s", shown, kv, kshown,
            ">=", None, "-", {**ratio, "raw": ts, "kafka_raw": tk, "kafka_measured_in_run": True})
        fs, fk = pair("fill")
        rs, rk = pair("ready")
        sv = rs["ready_ms"] if good(rs, "ready_ms") else None
        kv = rk["ready_ms"] if good(rk, "ready_ms") else None
        def ready_shown(r, f, v):
            if v is None:
                return (r or {}).get("error", "error")
            fill = f" (filled at {fmt_int(f['commits_per_s'])} commits/s)" if good(f, "commits_per_s") else ""
            return f"{fmt_int(v)} ms{fill}"
        sb, kb = (raw.get("offsets_bytes_strom") or {}).get("bytes"), (raw.get("offsets_bytes_kafka") or {}).get("bytes")
        kshown = ready_shown(rk, fk, kv) if rk else "n/a"
        if kv is not None and kb is not None:
            kshown += f", {kb / 1e6:.0f} MB log"
        hist = (f"{fmt_int(fs['commits'])} commits / {fmt_int(fs['groups'])} groups" if good(fs, "commits")
                else "1M commits / 10k groups")
        sshown = ready_shown(rs, fs, sv)
        if sv is not None and sb is not None:
            sshown += f", {sb / 1e6:.0f} MB log"
        add("restart_ready_1m_commits_ms", f"restart to ready, {hist}", sv, "ms", sshown,
            kv, kshown, "<", None, "-", {"raw": rs, "fill": fs, "kafka_raw": rk, "kafka_fill": fk,
                                         "offsets_log_bytes": sb, "kafka_offsets_log_bytes": kb,
                                         "kafka_measured_in_run": True})
        rc = raw.get("ready_compacted_strom")
        comp = raw.get("compaction_strom") or {}
        cv = rc["ready_ms"] if good(rc, "ready_ms") else None
        if cv is not None:
            cshown = f"{fmt_int(cv)} ms ({comp.get('before_bytes', 0) / 1e6:.1f} -> {comp.get('after_bytes', 0) / 1e6:.1f} MB)"
        else:
            cshown = (rc or comp or {}).get("error", "not measured")
        add("restart_ready_1m_commits_compacted_ms", "restart to ready, same history after compaction", cv, "ms",
            cshown, None, "-", "<", None, "-", {"raw": rc, "compaction": comp})

    # A strom figure beside Kafka's, both measured in this run.
    def beside(mid, label, kind, field, unit, fmt_value):
        s_, k_ = raw.get(f"{kind}_strom"), raw.get(f"{kind}_kafka")
        sv = s_[field] if good(s_, field) and s_.get("complete", True) else None
        kv = k_[field] if good(k_, field) and k_.get("complete", True) else None
        shown = fmt_value(s_) if sv is not None else (s_ or {}).get("error", "not run")
        kshown = fmt_value(k_) + " (measured here)" if kv is not None else (k_ or {}).get("error", "not run")
        ratio = {"x_kafka": round(sv / kv, 2)} if sv and kv else {}
        if ratio:
            shown += f" = {ratio['x_kafka']}x"
        every = [x[field] for x in (s_ or {}).get("runs", []) if field in x]
        if sv is not None and len(every) > 1:
            shown += f"; runs {min(every) / 1000:,.0f}k-{max(every) / 1000:,.0f}k"
        kevery = [x[field] for x in (k_ or {}).get("runs", []) if field in x]
        if kv is not None and len(kevery) > 1:
            kshown += f"; runs {min(kevery) / 1000:,.0f}k-{max(kevery) / 1000:,.0f}k"
        add(mid, label, sv, unit, shown, kv, kshown, ">=", None, "-",
            {**ratio, "raw": s_, "kafka_raw": k_, "kafka_measured_in_run": True})

    # Transactions: strom and Kafka measured in this run.
    if on("transactions"):
        beside("transactions_per_s", "transactions/s, 4 producers, 10 x 100 B each, commit each, 10 s",
               "txn_rate", "transactions_per_s", "txn/s", lambda r: f"{fmt_int(r['transactions_per_s'])} txn/s")
        rs_, rk_ = raw.get("txn_rate_strom"), raw.get("txn_rate_kafka")
        cs = rs_["broker_cpu_us_per_txn"] if good(rs_, "broker_cpu_us_per_txn") else None
        ck = rk_["broker_cpu_us_per_txn"] if good(rk_, "broker_cpu_us_per_txn") else None
        add("broker_cpu_per_transaction_us", "broker CPU time per transaction (the transactions/s run)", cs, "us",
            f"{cs} us" if cs is not None else "not measured", ck,
            f"{ck} us (measured here)" if ck is not None else "not measured", "<", 1000, "< 1,000 us",
            {"raw": rs_, "kafka_raw": rk_, "kafka_measured_in_run": True})
        beside("txn_produce_1000_per_txn", "produce 1M x 100 B in transactions of 1,000", "txn_fill",
               "msgs_per_s", "msg/s", lambda r: f"{fmt_int(r['msgs_per_s'])} msg/s")
        beside("consume_read_committed_100b", "consume 1M x 100 B read_committed (txns of 1,000)", "rc_consume",
               "msgs_per_s", "msg/s", lambda r: f"{fmt_int(r['msgs_per_s'])} msg/s ({r['mb_per_s']:.1f} MB/s)")

    # Three nodes: strom and Kafka measured in this run.
    if on("cluster"):
        beside("produce_rf3", "3 nodes: produce 1M x 100 B, acks=all+idempotence, replication 3",
               "produce_rf3", "msgs_per_s", "msg/s", lambda r: f"{fmt_int(r['msgs_per_s'])} msg/s")
        def lat_shown(r):
            return f"p50 {r['p50_ms']} / p99 {r['p99_ms']} / max {r['max_ms']} ms"
        ls_, lk_ = raw.get("latency_rf3_strom"), raw.get("latency_rf3_kafka")
        lsv = ls_["p99_ms"] if good(ls_, "p99_ms") and ls_.get("received") == ls_.get("sent") else None
        lkv = lk_["p99_ms"] if good(lk_, "p99_ms") and lk_.get("received") == lk_.get("sent") else None
        add("latency_rf3_p99_ms", "3 nodes: e2e latency, 5,000 msg/s x 20 s, acks=all, replication 3", lsv, "ms",
            lat_shown(ls_) if lsv is not None else (ls_ or {}).get("error", "not run"), lkv,
            lat_shown(lk_) + " (measured here)" if lkv is not None else (lk_ or {}).get("error", "not run"),
            "<", None, "-", {"raw": ls_, "kafka_raw": lk_, "kafka_measured_in_run": True})
        fs_, fk_ = raw.get("failover_strom"), raw.get("failover_kafka")
        # The probe's producer is not idempotent: a retry after the kill
        # may store a message twice (received > sent); none may be lost.
        def gap(r):
            ok = good(r, "max_ack_gap_ms") and r.get("delivery_failures") == 0 and r.get("received", 0) >= r.get("sent", 1)
            return r["max_ack_gap_ms"] if ok else None
        def gap_shown(r, v):
            if v is None:
                return (r or {}).get("error", "not run") if not good(r, "max_ack_gap_ms") else \
                    f"lost {r.get('sent', 0) - r.get('received', 0)}, failed {r.get('delivery_failures')}"
            dups = r.get("received", 0) - r.get("sent", 0)
            return f"{fmt_int(v)} ms without an acknowledgement, 0 lost" + (f", {dups} duplicated" if dups else "")
        fsv, fkv = gap(fs_), gap(fk_)
        add("failover_ms", "3 nodes: leader SIGKILLed under 1,000 msg/s acks=all: longest time without an ack",
            fsv, "ms", gap_shown(fs_, fsv), fkv,
            gap_shown(fk_, fkv) + (" (measured here)" if fkv is not None else ""), "<", None, "-",
            {"raw": fs_, "kafka_raw": fk_, "kafka_measured_in_run": True,
             "note": "both with broker.session.timeout.ms 9000 (the default): a SIGKILLed leader is fenced after it"})

    # TLS and SASL: strom and Kafka measured in this run, each listener.
    if on("security"):
        n = meta.get("security_messages", 1000000)
        size = f"{n / 1e6:g}M" if n >= 1000000 else f"{n / 1000:g}k"
        def sec_shown(r):
            cpu = f", broker CPU {fmt_int(r['broker_cpu_ms'])} ms" if r.get("broker_cpu_ms") is not None else ""
            return f"{fmt_int(r['msgs_per_s'])} msg/s ({r['mb_per_s']:.1f} MB/s{cpu})"
        for op, what in (("produce", f"produce {size} x 100 B, acks=1"), ("consume", f"consume {size} x 100 B from beginning")):
            for lst, over in (("plaintext", "PLAINTEXT"), ("sasl_ssl", "SASL_SSL (PLAIN over TLS)")):
                beside(f"{op}_100b_{lst}_listener", f"{what}, {over} listener", f"sec_{op}_{lst}",
                       "msgs_per_s", "msg/s", sec_shown)
            # SASL_SSL's throughput as a fraction of PLAINTEXT's, per broker.
            def frac(who):
                p_, t_ = raw.get(f"sec_{op}_plaintext_{who}"), raw.get(f"sec_{op}_sasl_ssl_{who}")
                ok = all(good(x, "msgs_per_s") and x.get("complete") for x in (p_, t_))
                return round(t_["msgs_per_s"] / p_["msgs_per_s"], 2) if ok and p_["msgs_per_s"] else None
            fs_, fk_ = frac("strom"), frac("kafka")
            add(f"{op}_sasl_ssl_vs_plaintext", f"{op}: SASL_SSL throughput / PLAINTEXT throughput", fs_, "ratio",
                f"{fs_:.2f}x" if fs_ is not None else "not measured", fk_,
                f"{fk_:.2f}x (measured here)" if fk_ is not None else "not measured", ">=", None, "-",
                {"kafka_measured_in_run": True})

    if on("broker"):
        st = raw.get("startup")
        sv = st["median_ms"] if st and "error" not in st else None
        add("start_ms", "start to first answered ApiVersions", sv, "ms",
            f"{sv} ms (median of {len(st['trials_ms'])})" if sv is not None else "error",
            9500, "9,500 ms", "<", 100, "< 100 ms", {"raw": st})

    widths = [max(len(str(r[i])) for r in rows + [("metric", "strom", KAFKA, "strom target", "verdict")]) for i in range(5)]
    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    print(line(("metric", "strom", KAFKA, "strom target", "verdict")))
    print("|-" + "-|-".join("-" * w for w in widths) + "-|")
    for r in rows:
        print(line(r))
    doc = {"meta": meta, "metrics": metrics}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2); f.write("\n")

if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd == "startup":
        startup(rest[0], int(rest[1]))
    elif cmd == "create-topic":
        create_topic(rest[0], rest[1], int(rest[2]), int(rest[3]) if len(rest) > 3 else 1)
    elif cmd == "perf":
        cmd_perf(rest)
    elif cmd == "parallel":
        cmd_parallel(rest)
    elif cmd == "report":
        report(rest[0], rest[1], rest[2])
PY
helper() { python3 "$WORK/helper.py" "$@"; }

now_s() { date +%s.%N; }
elapsed() { python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$1" "$2"; }

broker_alive() {
    if ! kill -0 "$STROM_PID" 2>/dev/null; then
        fail "broker process $STROM_PID is gone (log: $WORK/strom.log)"
        cp "$STROM_DATA/strom.log" "$WORK/strom.log" 2>/dev/null || true
        return 1
    fi
}

vm() { # vm FIELD: a /proc/<broker>/status field in kB
    awk -v f="$1:" '$1 == f {print $2}' "/proc/$STROM_PID/status" 2>/dev/null
}

# perf_run KIND MODE EXPECT TIMEOUT TOPIC ARGS...: $REPEAT rdkafka_performance
# runs; a producer writes to TOPIC-<run>, a consumer reads TOPIC every time.
perf_run() {
    local kind=$1 mode=$2 expect=$3 limit=$4 topic=$5; shift 5
    local run out t0 t1 rc r t extra
    for run in $(seq 1 "$REPEAT"); do
        broker_alive || return 1
        log "$kind (run $run of $REPEAT)"
        out=$WORK/$kind.$run.out
        [ "$mode" = P ] && t="$topic-$run" || t=$topic
        t0=$(now_s)
        extra=()
        [ "$mode" = P ] && extra=(-X "linger.ms=$LINGER")
        bg timeout -k 5 "$limit" "$PERF" "-$mode" -b "$STROM_BOOTSTRAP" -t "$t" -c "$expect" "${extra[@]}" "$@" >"$out" 2>&1
        rc=$?
        t1=$(now_s)
        r=$(helper perf "$kind" "$mode" "$out" "$expect" "$(elapsed "$t0" "$t1")" "$run")
        echo "$r" >>"$RAW"
        if [ $rc -ne 0 ] || ! grep -q '"complete": true' <<<"$r"; then
            fail "$kind run $run: exit $rc, $r (output: $out)"
            tail -5 "$out" >&2
        fi
    done
}

# ---------------------------------------------------------------- 1. builds
STEPS=${STROM_BENCH_STEPS:-all}
# want STEP: whether STROM_BENCH_STEPS selects STEP.
want() { [ "$STEPS" = all ] || [[ ",$STEPS," == *",$1,"* ]]; }
# The examples are built for the steps that use them (latency: broker and
# cluster; commit_bench: coordinator; txn_bench: transactions); the
# security step needs only rdkafka_performance.
if [ -z "$STROM_BIN_GIVEN" ]; then
    log "cargo build --release"
    bg timeout 1800 cargo build --release --quiet || { fail "cargo build --release"; exit 1; }
else
    log "strom: $STROM_BIN (STROM_BIN, not built)"
    [ -x "$STROM_BIN" ] || { fail "STROM_BIN=$STROM_BIN is not an executable"; exit 1; }
fi
if want broker || want cluster; then
log "cargo build --release --example latency"
bg timeout 1800 cargo build --release --quiet --example latency || { fail "building the latency example"; exit 1; }
fi
LATENCY=$ROOT/target/release/examples/latency
if want coordinator; then
log "cargo build --release --example commit_bench"
bg timeout 1800 cargo build --release --quiet --example commit_bench || { fail "building the commit_bench example"; exit 1; }
fi
COMMIT_BENCH=$ROOT/target/release/examples/commit_bench
if want transactions; then
log "cargo build --release --example txn_bench"
bg timeout 1800 cargo build --release --quiet --example txn_bench || { fail "building the txn_bench example"; exit 1; }
fi
TXN_BENCH=$ROOT/target/release/examples/txn_bench
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

if want broker; then
log "librdkafka 2.0.2 rdkafka_performance (compat/librdkafka/setup.sh)"
bg timeout 3600 "$ROOT/compat/librdkafka/setup.sh" >"$WORK/setup.out" 2>"$WORK/setup.err"
SRC=$(tail -1 "$WORK/setup.out")
if [ -z "$SRC" ] || [ ! -d "$SRC" ]; then fail "compat/librdkafka/setup.sh (see $WORK/setup.err)"; exit 1; fi
PERF=$SRC/examples/rdkafka_performance
if [ ! -x "$PERF" ]; then
    bg timeout 600 make -C "$SRC/examples" rdkafka_performance >"$WORK/perf-make.out" 2>&1 ||
        { fail "make rdkafka_performance (see $WORK/perf-make.out)"; exit 1; }
fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------- 2. start to first answer
log "start to first answered ApiVersions (5 trials)"
if bg timeout 200 python3 "$WORK/helper.py" startup "$STROM_BIN" 5 >"$WORK/startup.out"; then
    cat "$WORK/startup.out" >>"$RAW"
else
    fail "startup measurement"
fi

# ---------------------------------------------------------------- 3. broker
log "starting broker"
start_broker || { fail "start_broker"; exit 1; }
log "broker pid $STROM_PID on $STROM_BOOTSTRAP, data $STROM_DATA"
sleep 1
IDLE_RSS=$(vm VmRSS)

perf_run produce_100b_acks1 P 1000000 180 bench-100b-acks1 -p 0 -s 100 -X acks=1
perf_run produce_100b_idempotent P 1000000 180 bench-100b-idem -p 0 -s 100 \
    -X acks=all -X enable.idempotence=true
perf_run produce_100b_lz4 P 1000000 180 bench-100b-lz4 -p 0 -s 100 -X acks=1 -z lz4
perf_run produce_1kb_acks1 P 300000 180 bench-1kb-acks1 -p 0 -s 1024 -X acks=1
perf_run consume_100b C 1000000 120 bench-100b-acks1-1 -p 0 -o beginning

if broker_alive; then
    log "latency: 5,000 msg/s for 20 s, acks=all"
    bg timeout -k 5 120 "$LATENCY" --bootstrap "$STROM_BOOTSTRAP" --rate 5000 --seconds 20 \
        --topic bench-latency >"$WORK/latency.out" 2>"$WORK/latency.err"
    rc=$?
    r=$(tail -1 "$WORK/latency.out")
    if [ $rc -eq 0 ] && [ -n "$r" ]; then
        python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o["kind"]="latency"; print(json.dumps(o))' "$r" >>"$RAW"
    else
        fail "latency run: exit $rc, $r $(cat "$WORK/latency.err")"
        [ -n "$r" ] && python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o["kind"]="latency"; print(json.dumps(o))' "$r" >>"$RAW" 2>/dev/null
    fi
fi

if broker_alive; then
    for run in $(seq 1 "$REPEAT"); do
        broker_alive || break
        log "8 producers x 64 partitions, 8 x 250,000 x 100 B, acks=1 (run $run of $REPEAT)"
        if ! bg timeout 60 python3 "$WORK/helper.py" create-topic "$STROM_BOOTSTRAP" "bench-p64-$run" 64; then
            fail "creating the 64-partition topic bench-p64-$run"
            break
        fi
        outs=()
        pids=()
        t0=$(now_s)
        for i in $(seq 1 8); do
            out=$WORK/produce_8x64.$run.$i.out
            outs+=("$out")
            timeout -k 5 180 "$PERF" -P -b "$STROM_BOOTSTRAP" -t "bench-p64-$run" -s 100 -c 250000 -X acks=1 \
                -X "linger.ms=$LINGER" >"$out" 2>&1 &
            pids+=($!)
            BG_PIDS+=($!)
        done
        rcs=0
        for p in "${pids[@]}"; do wait "$p" || rcs=$((rcs + 1)); done
        t1=$(now_s)
        BG_PIDS=()
        r=$(helper parallel produce_8x64 "$(elapsed "$t0" "$t1")" 250000 "$run" "${outs[@]}")
        echo "$r" >>"$RAW"
        if [ $rcs -ne 0 ] || ! grep -q '"complete": true' <<<"$r"; then
            fail "produce_8x64 run $run: $rcs producers failed, $r (outputs: $WORK/produce_8x64.$run.*.out)"
        fi
    done
fi

if broker_alive; then
    AFTER_RSS=$(vm VmRSS)
    PEAK_HWM=$(vm VmHWM)
    python3 -c 'import json,sys; v=[int(x) if x else None for x in sys.argv[1:]]; print(json.dumps({"kind":"rss","idle_rss_kb":v[0],"after_rss_kb":v[1],"peak_hwm_kb":v[2]}))' \
        "$IDLE_RSS" "$AFTER_RSS" "$PEAK_HWM" >>"$RAW"
    if grep -qE ' (ERROR|WARN) ' "$STROM_DATA/strom.log"; then
        log "broker log has warnings/errors:"
        grep -E ' (ERROR|WARN) ' "$STROM_DATA/strom.log" | head -20 >&2
    fi
else
    python3 -c 'import json,sys; print(json.dumps({"kind":"rss","idle_rss_kb":int(sys.argv[1]) if sys.argv[1] else None}))' "$IDLE_RSS" >>"$RAW"
fi
stop_bench_broker
fi # want broker

# ------------------------------------------- 4. group coordinator: strom and Kafka
if want coordinator; then
HIST_GROUPS=${STROM_BENCH_HIST_GROUPS:-10000}
HIST_COMMITS=${STROM_BENCH_HIST_COMMITS:-100}
SEGMENT=offsets.topic.segment.bytes=1048576
# Kafka answers one request per connection at a time and lingers a few ms
# before appending coordinator records (group.coordinator.append.linger.ms),
# so the fill spreads over 64 connections with 16 requests in flight each.
FILL_CONN=(--connections 64 --depth 16)

# coord_record KIND FILE: the tool's JSON line (or an error) into $RAW.
coord_record() {
    python3 - "$1" "$2" "${3:-}" >>"$RAW" <<'PY'
import json, sys
kind, path, err = sys.argv[1], sys.argv[2], sys.argv[3]
line = ""
try:
    lines = [l for l in open(path) if l.startswith("{")]
    line = lines[-1] if lines else ""
except OSError:
    pass
o = json.loads(line) if line else {}
if err or not line:
    o["error"] = err or "no result"
o["kind"] = kind
print(json.dumps(o))
PY
}

# coord_run KIND TIMEOUT ARGS...: commit_bench ARGS under a timeout; its JSON
# into $RAW as KIND. Returns the tool's status.
coord_run() {
    local kind=$1 limit=$2 rc; shift 2
    log "$kind: commit_bench $1"
    bg timeout -k 10 "$limit" "$COMMIT_BENCH" "$@" >"$WORK/$kind.out" 2>"$WORK/$kind.err"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$kind: exit $rc: $(tail -c 600 "$WORK/$kind.err")"
        coord_record "$kind" "$WORK/$kind.out" "exit $rc: $(tail -n 1 "$WORK/$kind.err" | cut -c1-200)"
    else
        coord_record "$kind" "$WORK/$kind.out"
    fi
    return $rc
}

# offsets_bytes DIR: bytes of the .log segments of every __consumer_offsets-*
# partition under DIR.
offsets_bytes() {
    find "$1" -path '*__consumer_offsets-*' -type f -name '*.log' -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}

# strom: throughput, fill, restart-to-ready, compaction, restart-to-ready.
CDIR=$WORK/coord-strom
mkdir -p "$CDIR"
CPORT=$(free_port)
CBOOT=127.0.0.1:$CPORT
COORD_ARGS=(--listen "$CBOOT" --data-dir "$CDIR/data" --set "$SEGMENT")
start_coord_strom() { # start_coord_strom [extra flags...]
    "$STROM_BIN" "${COORD_ARGS[@]}" "$@" >>"$CDIR/strom.log" 2>&1 &
    COORD_PID=$!
    local deadline=$((SECONDS + 120))
    until grep -q "strom started" "$CDIR/strom.log" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "$COORD_PID" 2>/dev/null; then
            fail "coordinator-step strom did not start (log: $CDIR/strom.log)"; return 1
        fi
        sleep 0.05
    done
}
: >"$CDIR/strom.log"
log "group coordinator: strom on $CBOOT ($HIST_GROUPS groups x $HIST_COMMITS commits)"
if start_coord_strom; then
    coord_run commit_tput_strom 120 --bootstrap "$CBOOT" throughput --clients 4 --seconds 10
    if coord_run fill_strom 900 --bootstrap "$CBOOT" fill --groups "$HIST_GROUPS" --commits "$HIST_COMMITS" "${FILL_CONN[@]}"; then
        stop_coord_strom
        coord_run ready_strom 400 --bootstrap "$CBOOT" ready --groups "$HIST_GROUPS" --commits "$HIST_COMMITS" \
            --log "$CDIR/ready.log" -- "$STROM_BIN" "${COORD_ARGS[@]}"
        # Compaction: restart with an eager cleaner until __consumer_offsets
        # is at most half its size (or the deadline), then stop.
        before=$(offsets_bytes "$CDIR/data")
        echo "{\"kind\": \"offsets_bytes_strom\", \"bytes\": $before}" >>"$RAW"
        log "compaction: strom with an eager cleaner, __consumer_offsets $before bytes"
        t0=$SECONDS
        if start_coord_strom --set log.cleaner.backoff.ms=100 --set log.cleaner.min.cleanable.ratio=0.01; then
            deadline=$((SECONDS + 90))
            after=$before
            while [ $SECONDS -lt $deadline ] && kill -0 "$COORD_PID" 2>/dev/null; do
                after=$(offsets_bytes "$CDIR/data")
                [ "$after" -gt 0 ] && [ $((after * 2)) -le "$before" ] && break
                sleep 0.5
            done
            secs=$((SECONDS - t0))
            stop_coord_strom
            after=$(offsets_bytes "$CDIR/data")
            if [ "$after" -gt 0 ] && [ $((after * 2)) -le "$before" ]; then
                echo "{\"kind\": \"compaction_strom\", \"before_bytes\": $before, \"after_bytes\": $after, \"seconds\": $secs}" >>"$RAW"
                coord_run ready_compacted_strom 400 --bootstrap "$CBOOT" ready --groups "$HIST_GROUPS" \
                    --commits "$HIST_COMMITS" --log "$CDIR/ready-compacted.log" -- "$STROM_BIN" "${COORD_ARGS[@]}"
            else
                log "compaction did not run: __consumer_offsets $before -> $after bytes in ${secs} s"
                echo "{\"kind\": \"compaction_strom\", \"before_bytes\": $before, \"after_bytes\": $after, \"seconds\": $secs, \"error\": \"n/a: an eager cleaner did not halve it within 90 s ($before -> $after bytes): the default cleaner runs during the fill, so the log above may be compacted already\"}" >>"$RAW"
            fi
        fi
    fi
    stop_coord_strom
fi
[ "$FAILED" -ne 0 ] && cp "$CDIR/strom.log" "$WORK/coord-strom.log" 2>/dev/null
rm -rf "$CDIR/data"

# Kafka: the same tool against Apache Kafka 4.1.0 started from the tarball.
if kafka_dist; then
    log "group coordinator: Apache Kafka 4.1.0 (starting)"
    if start_kafka "$SEGMENT" >"$WORK/kafka-start.out" 2>&1; then
        coord_run commit_tput_kafka 120 --bootstrap "$KAFKA_BOOTSTRAP" throughput --clients 4 --seconds 10
        if coord_run fill_kafka 1800 --bootstrap "$KAFKA_BOOTSTRAP" fill --groups "$HIST_GROUPS" --commits "$HIST_COMMITS" "${FILL_CONN[@]}"; then
            log "Kafka: SIGTERM, wait"
            kafka_terminate
            # Kafka's cleaner runs during the fill (its defaults): the size it
            # restarts on goes beside strom's.
            echo "{\"kind\": \"offsets_bytes_kafka\", \"bytes\": $(offsets_bytes "$KAFKA_STATE/data")}" >>"$RAW"
            LOG_DIR=$KAFKA_STATE/logs KAFKA_HEAP_OPTS="-Xmx1G -Xms512m" \
                coord_run ready_kafka 400 --bootstrap "$KAFKA_BOOTSTRAP" ready --groups "$HIST_GROUPS" \
                --commits "$HIST_COMMITS" --log "$WORK/kafka-ready.log" -- \
                "$KAFKA_HOME/bin/kafka-server-start.sh" "$KAFKA_STATE/server.properties"
        fi
    else
        fail "Kafka did not start: $(tail -n 5 "$WORK/kafka-start.out")"
        echo '{"kind": "commit_tput_kafka", "error": "Kafka did not start"}' >>"$RAW"
    fi
    stop_kafka
else
    for k in commit_tput_kafka ready_kafka; do
        echo "{\"kind\": \"$k\", \"error\": \"n/a: no Kafka distribution\"}" >>"$RAW"
    done
fi

fi # want coordinator

# ------------------------------------------------ 5. transactions: strom and Kafka
# txn_step NAME BOOTSTRAP: txn_bench's rate, fill and read_committed consume
# runs against one broker; JSON into $RAW as txn_rate_NAME, txn_fill_NAME,
# rc_consume_NAME (one line per run).
txn_step() {
    local name=$1 boot=$2 pid=$3 run rc kind cpu_before
    log "transactions ($name): 4 producers x 10 records per transaction, 10 s"
    cpu_before=$(cpu_ms "$pid")
    bg timeout -k 10 120 "$TXN_BENCH" --bootstrap "$boot" --linger-ms "$LINGER" rate --producers 4 --records 10 \
        --seconds 10 >"$WORK/txn_rate_$name.out" 2>"$WORK/txn_rate_$name.err"
    rc=$?
    # The broker's CPU time over the run (user + system, all its threads).
    BROKER_CPU_MS=$(($(cpu_ms "$pid") - cpu_before)) \
        txn_record "txn_rate_$name" "$WORK/txn_rate_$name.out" "$WORK/txn_rate_$name.err" $rc
    log "transactions ($name): 1M x 100 B in transactions of 1,000"
    bg timeout -k 10 300 "$TXN_BENCH" --bootstrap "$boot" --linger-ms "$LINGER" fill --messages 1000000 \
        --per-txn 1000 >"$WORK/txn_fill_$name.out" 2>"$WORK/txn_fill_$name.err"
    rc=$?
    txn_record "txn_fill_$name" "$WORK/txn_fill_$name.out" "$WORK/txn_fill_$name.err" $rc
    [ $rc -eq 0 ] || return 1
    for run in $(seq 1 "$REPEAT"); do
        kind=rc_consume_$name
        log "transactions ($name): read_committed consume 1M x 100 B (run $run of $REPEAT)"
        bg timeout -k 10 180 "$TXN_BENCH" --bootstrap "$boot" consume --messages 1000000 \
            >"$WORK/$kind.$run.out" 2>"$WORK/$kind.$run.err"
        rc=$?
        txn_record "$kind" "$WORK/$kind.$run.out" "$WORK/$kind.$run.err" $rc "$run"
    done
}

# cpu_ms PID: the CPU time (user + system) process PID has used, in ms.
cpu_ms() {
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# txn_record KIND OUT ERR STATUS [RUN]: txn_bench's JSON line (or the error)
# into $RAW; with BROKER_CPU_MS set, the broker's CPU time over the run and
# per transaction.
txn_record() {
    [ "$4" -eq 0 ] || fail "$1${5:+ run $5}: exit $4: $(tail -c 600 "$3")"
    python3 - "$@" >>"$RAW" <<'PY'
import json, os, sys
kind, out, err, status = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
run = int(sys.argv[5]) if len(sys.argv) > 5 else None
lines = [l for l in open(out, errors="replace") if l.startswith("{")]
o = json.loads(lines[-1]) if lines else {}
if status != 0 or not lines:
    tail = open(err, errors="replace").read().strip().splitlines()
    o["error"] = f"exit {status}: " + (tail[0][:200] if tail else "no output")
    o["complete"] = False
o["kind"] = kind
if run is not None:
    o["run"] = run
cpu = os.environ.get("BROKER_CPU_MS")
if cpu is not None and o.get("transactions"):
    o["broker_cpu_ms"] = int(cpu)
    o["broker_cpu_us_per_txn"] = round(int(cpu) * 1000 / o["transactions"], 1)
print(json.dumps(o))
PY
}

if want transactions; then
    log "transactions: strom"
    if start_broker; then
        txn_step strom "$STROM_BOOTSTRAP" "$STROM_PID" || true
    else
        fail "start_broker (transactions step)"
    fi
    stop_bench_broker
    if kafka_dist; then
        log "transactions: Apache Kafka 4.1.0 (starting)"
        if start_kafka >"$WORK/kafka-start-txn.out" 2>&1; then
            txn_step kafka "$KAFKA_BOOTSTRAP" "$KAFKA_PID" || true
        else
            fail "Kafka did not start: $(tail -n 5 "$WORK/kafka-start-txn.out")"
            echo '{"kind": "txn_rate_kafka", "error": "Kafka did not start"}' >>"$RAW"
        fi
        stop_kafka
    else
        for k in txn_rate_kafka txn_fill_kafka rc_consume_kafka; do
            echo "{\"kind\": \"$k\", \"error\": \"n/a: no Kafka distribution\"}" >>"$RAW"
        done
    fi
fi

# ------------------------------------------------- 6. three nodes: strom and Kafka
# cluster_step NAME BOOTSTRAP PIDS...: on a three-node cluster (node id N's
# process is the Nth pid): 1M x 100 B acks=all+idempotence into a
# partition with replication factor 3 (min.insync.replicas=2), end-to-end
# latency at 5,000 msg/s, and a failover: latency at 1,000 msg/s for 30 s
# with the partition's leader SIGKILLed 10 s in; the longest time without
# an acknowledgement is the failover a producer sees. JSON into $RAW as
# produce_rf3_NAME (per run), latency_rf3_NAME, failover_NAME.
cluster_step() {
    local name=$1 boot=$2 run out rc r t0 t1 leader kind
    shift 2
    local pids=("$@")
    for run in $(seq 1 "$REPEAT"); do
        kind=produce_rf3_$name
        log "$kind: 1M x 100 B acks=all, replication 3 (run $run of $REPEAT)"
        bg timeout 60 python3 "$WORK/helper.py" create-topic "$boot" "bench-rf3-$run" 1 3 ||
            { fail "$kind: create topic"; return 1; }
        out=$WORK/$kind.$run.out
        t0=$(now_s)
        bg timeout -k 5 300 "$PERF" -P -b "$boot" -t "bench-rf3-$run" -p 0 -s 100 -c 1000000 \
            -X acks=all -X enable.idempotence=true -X "linger.ms=$LINGER" >"$out" 2>&1
        rc=$?
        t1=$(now_s)
        r=$(helper perf "$kind" P "$out" 1000000 "$(elapsed "$t0" "$t1")" "$run")
        echo "$r" >>"$RAW"
        [ $rc -eq 0 ] && grep -q '"complete": true' <<<"$r" || fail "$kind run $run: exit $rc, $r (output: $out)"
    done
    for kind in latency_rf3 failover; do
        bg timeout 60 python3 "$WORK/helper.py" create-topic "$boot" "bench-$kind" 1 3 ||
            { fail "$kind ($name): create topic"; return 1; }
    done
    log "latency_rf3 ($name): 5,000 msg/s for 20 s, acks=all, replication 3"
    bg timeout -k 5 120 "$LATENCY" --bootstrap "$boot" --rate 5000 --seconds 20 --topic bench-latency_rf3 \
        >"$WORK/latency_rf3_$name.out" 2>"$WORK/latency_rf3_$name.err"
    latency_record "latency_rf3_$name" $? "$WORK/latency_rf3_$name"
    log "failover ($name): 1,000 msg/s for 30 s, the leader SIGKILLed after 10 s"
    "$LATENCY" --bootstrap "$boot" --rate 1000 --seconds 30 --topic bench-failover \
        >"$WORK/failover_$name.out" 2>"$WORK/failover_$name.err" &
    local probe=$!
    BG_PIDS+=($probe)
    sleep 10
    leader=$(kcat -b "$boot" -L -t bench-failover -J 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["topics"][0]["partitions"][0]["leader"])' 2>/dev/null)
    if [ -n "$leader" ] && [ "$leader" -ge 1 ] && [ "$leader" -le 3 ]; then
        log "failover ($name): SIGKILL node $leader (pid ${pids[$((leader - 1))]})"
        kill -KILL "${pids[$((leader - 1))]}" 2>/dev/null || true
    else
        fail "failover ($name): no leader found ($leader)"
    fi
    timeout -k 5 120 tail --pid="$probe" -f /dev/null
    wait "$probe"
    latency_record "failover_$name" $? "$WORK/failover_$name"
    BG_PIDS=()
}

# latency_record KIND STATUS OUTBASE: the latency probe's JSON line (or
# its error) into $RAW.
latency_record() {
    local r
    r=$(tail -1 "$3.out")
    if [ "$2" -eq 0 ] && [ -n "$r" ]; then
        python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o["kind"]=sys.argv[2]; print(json.dumps(o))' "$r" "$1" >>"$RAW"
    else
        fail "$1: exit $2, $r $(tail -c 300 "$3.err")"
        echo "{\"kind\": \"$1\", \"error\": \"exit $2\"}" >>"$RAW"
    fi
}

# ensure_perf: PERF is rdkafka_performance (built when a step before did not).
ensure_perf() {
    if [ -z "${PERF:-}" ]; then
        bg timeout 3600 "$ROOT/compat/librdkafka/setup.sh" >"$WORK/setup.out" 2>"$WORK/setup.err"
        PERF=$(tail -1 "$WORK/setup.out")/examples/rdkafka_performance
        [ -x "$PERF" ] || bg timeout 600 make -C "$(dirname "$PERF")" rdkafka_performance >"$WORK/perf-make.out" 2>&1
    fi
    [ -x "$PERF" ] || { fail "no rdkafka_performance (see $WORK/setup.err, $WORK/perf-make.out)"; return 1; }
}

if want cluster; then
    ensure_perf
    # shellcheck source=../compat/lib/cluster.sh
    source "$ROOT/compat/lib/cluster.sh"
    log "three nodes: strom"
    if start_cluster --set default.replication.factor=3 --set min.insync.replicas=2 >"$WORK/cluster-start.out" 2>&1; then
        cluster_step strom "$STROM_CLUSTER_BOOTSTRAP" "${STROM_CLUSTER_PIDS[@]}" || true
    else
        fail "three strom nodes did not start: $(tail -n 5 "$WORK/cluster-start.out")"
    fi
    stop_cluster
    if kafka_dist; then
        log "three nodes: Apache Kafka 4.1.0 (starting)"
        if start_kafka_cluster default.replication.factor=3 min.insync.replicas=2 \
            >"$WORK/kafka3-start.out" 2>&1; then
            cluster_step kafka "$KAFKA_BOOTSTRAP" "${KAFKA_NODE_PIDS[@]}" || true
        else
            fail "three Kafka nodes did not start: $(tail -n 5 "$WORK/kafka3-start.out")"
        fi
        stop_kafka_cluster
    else
        for k in produce_rf3_kafka latency_rf3_kafka failover_kafka; do
            echo "{\"kind\": \"$k\", \"error\": \"n/a: no Kafka distribution\"}" >>"$RAW"
        done
    fi
fi

# ------------------------------------- 7. TLS and SASL: strom and Kafka
# One broker each (strom, then Kafka 4.1.0), started from the same
# server.properties lines: a PLAINTEXT and a SASL_SSL listener (PLAIN, the
# user in the listener's JAAS config; PEM keystore, a throwaway CA and
# broker cert made here with openssl, SAN IP:127.0.0.1). rdkafka_performance
# produces $SEC_MSGS x 100 B (acks=1, one partition, a fresh topic per run)
# and consumes them from the beginning, over each listener in turn
# ($STROM_BENCH_REPEAT runs each, PLAINTEXT and SASL_SSL alternating). The
# client verifies the broker cert (ssl.ca.location). JSON into $RAW as
# sec_{produce,consume}_{plaintext,sasl_ssl}_{strom,kafka} (one line per
# run, with the broker's CPU time over the run).
SEC_MSGS=${STROM_BENCH_SECURITY_MESSAGES:-1000000}
SEC_PLAIN_JAAS='org.apache.kafka.common.security.plain.PlainLoginModule required user_bench="bench-secret";'

make_sec_certs() { # make_sec_certs DIR: ca.pem, broker.pem (compat/lib/tls.sh)
    mkdir -p "$1" && cd "$1" || return 1
    tls_ca ca && tls_cert ca broker "/O=strom/CN=localhost" server
}

# sec_props TARGET FILE STATE: the listeners' server.properties for a broker
# in the state dir STATE (one_node_props); SEC_PLAIN / SEC_SASL are the two
# listeners' addresses.
sec_props() {
    local listeners
    SEC_PLAIN=127.0.0.1:$(free_port) SEC_SASL=127.0.0.1:$(free_port)
    listeners="PLAINTEXT://$SEC_PLAIN,SASL_SSL://$SEC_SASL"
    {
        one_node_props "$1" "$listeners" PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL "$3"
        cat <<PROPS
advertised.listeners=$listeners
inter.broker.listener.name=PLAINTEXT
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
ssl.keystore.type=PEM
ssl.keystore.location=$SEC_CERTS/broker.pem
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=$SEC_PLAIN_JAAS
PROPS
    } >"$2"
}

# sec_perf KIND MODE BOOTSTRAP TOPIC RUN PID ARGS...: one rdkafka_performance
# run; its JSON line (with the broker's CPU time) into $RAW.
sec_perf() {
    local kind=$1 mode=$2 boot=$3 topic=$4 run=$5 pid=$6 out t0 t1 rc r cpu_before extra=()
    shift 6
    out=$WORK/$kind.$run.out
    [ "$mode" = P ] && extra=(-X acks=1 -X "linger.ms=$LINGER")
    [ "$mode" = C ] && extra=(-o beginning)
    log "$kind: $SEC_MSGS x 100 B (run $run of $REPEAT)"
    cpu_before=$(cpu_ms "$pid")
    t0=$(now_s)
    bg timeout -k 5 240 "$PERF" "-$mode" -b "$boot" -t "$topic" -p 0 -s 100 -c "$SEC_MSGS" "${extra[@]}" "$@" >"$out" 2>&1
    rc=$?
    t1=$(now_s)
    r=$(helper perf "$kind" "$mode" "$out" "$SEC_MSGS" "$(elapsed "$t0" "$t1")" "$run")
    r=$(python3 -c 'import json,sys; o=json.loads(sys.argv[1]); o["broker_cpu_ms"]=int(sys.argv[2]); print(json.dumps(o))' \
        "$r" "$(($(cpu_ms "$pid") - cpu_before))")
    echo "$r" >>"$RAW"
    if [ $rc -ne 0 ] || ! grep -q '"complete": true' <<<"$r"; then
        fail "$kind run $run: exit $rc, $r (output: $out)"
        tail -5 "$out" >&2
    fi
}

# security_step NAME PID: produce, then consume, over both listeners.
security_step() {
    local name=$1 pid=$2 run l boot args
    local sasl_args=(-X security.protocol=SASL_SSL -X sasl.mechanism=PLAIN -X sasl.username=bench
        -X sasl.password=bench-secret -X "ssl.ca.location=$SEC_CERTS/ca.pem")
    # Odd runs PLAINTEXT first, even runs SASL_SSL first: neither listener
    # always gets the first (cold) run.
    local order=("plaintext sasl_ssl" "sasl_ssl plaintext")
    for run in $(seq 1 "$REPEAT"); do
        for l in ${order[$(((run + 1) % 2))]}; do
            bg timeout 60 python3 "$WORK/helper.py" create-topic "$SEC_PLAIN" "bench-sec-$l-$run" 1 ||
                { fail "security ($name): create topic bench-sec-$l-$run"; return 1; }
            if [ $l = plaintext ]; then boot=$SEC_PLAIN args=(); else boot=$SEC_SASL args=("${sasl_args[@]}"); fi
            sec_perf "sec_produce_${l}_$name" P "$boot" "bench-sec-$l-$run" "$run" "$pid" "${args[@]}"
        done
    done
    for run in $(seq 1 "$REPEAT"); do
        for l in ${order[$(((run + 1) % 2))]}; do
            if [ $l = plaintext ]; then boot=$SEC_PLAIN args=(); else boot=$SEC_SASL args=("${sasl_args[@]}"); fi
            sec_perf "sec_consume_${l}_$name" C "$boot" "bench-sec-$l-1" "$run" "$pid" "${args[@]}"
        done
    done
}

if want security; then
    SEC_CERTS=$WORK/sec-certs
    if ! ensure_perf; then
        :
    elif ! (make_sec_certs "$SEC_CERTS") >"$WORK/sec-openssl.log" 2>&1; then
        fail "openssl (see $WORK/sec-openssl.log)"
    else
        log "security: strom (PLAINTEXT and SASL_SSL listeners)"
        STROM_DATA=$(mktemp -d)
        sec_props strom "$STROM_DATA/server.properties" "$STROM_DATA"
        if start_one_node strom "$STROM_DATA/server.properties" "$STROM_DATA" >"$WORK/strom-start-sec.out"; then
            STROM_PID=$BROKER_PID
            security_step strom "$STROM_PID" || true
        else
            fail "strom did not start: $(tail -n 5 "$WORK/strom-start-sec.out")"
        fi
        stop_bench_broker
        if kafka_dist; then
            log "security: Apache Kafka 4.1.0 (starting, PLAINTEXT and SASL_SSL listeners)"
            KAFKA_STATE=$(mktemp -d "${TMPDIR:-/tmp}/strom-kafka.XXXXXX")
            sec_props kafka "$KAFKA_STATE/server.properties" "$KAFKA_STATE"
            if start_one_node kafka "$KAFKA_STATE/server.properties" "$KAFKA_STATE" >"$WORK/kafka-start-sec.out" 2>&1; then
                security_step kafka "$KAFKA_PID" || true
            else
                fail "Kafka did not start: $(tail -n 5 "$WORK/kafka-start-sec.out")"
                echo '{"kind": "sec_produce_plaintext_kafka", "error": "Kafka did not start"}' >>"$RAW"
            fi
            stop_kafka
        else
            for k in sec_produce_plaintext_kafka sec_produce_sasl_ssl_kafka sec_consume_plaintext_kafka \
                sec_consume_sasl_ssl_kafka; do
                echo "{\"kind\": \"$k\", \"error\": \"n/a: no Kafka distribution\"}" >>"$RAW"
            done
        fi
    fi
fi

# ---------------------------------------------------------------- report
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
META=$(python3 -c '
import json, platform, sys
print(json.dumps({"date": sys.argv[1], "git_commit": sys.argv[2], "nproc": int(sys.argv[3]),
                  "loadavg_before": sys.argv[4], "loadavg_after": sys.argv[5], "kernel": platform.release(),
                  "librdkafka": "2.0.2 (Debian source, examples/rdkafka_performance)",
                  "producer_linger_ms": int(sys.argv[6]), "runs_per_throughput": int(sys.argv[7]), "steps": sys.argv[8],
                  "security_messages": int(sys.argv[9]),
                  "kafka_reference": "Apache Kafka 4.1 numbers quoted in the issue, except the group coordinator, transaction, three-node and TLS/SASL rows: Apache Kafka 4.1.0 from ../shared/kafka measured in this run (kafka_measured_in_run)"}))' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo -dirty)" \
    "$(nproc)" "$LOAD_BEFORE" "$LOAD_AFTER" "$LINGER" "$REPEAT" "$STEPS" "$SEC_MSGS")
echo
echo "strom benchmark ($(nproc) CPUs, load average before $LOAD_BEFORE, after $LOAD_AFTER; throughputs: median of $REPEAT runs, producer linger.ms=$LINGER)"
helper report "$RAW" "$OUT" "$META" || fail "rendering the report"
echo
echo "results: $OUT"
exit "$FAILED"
