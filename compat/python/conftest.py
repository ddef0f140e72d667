"""Fixtures and the RESULT-line reporter of the Python client suite.

Every test carries @pytest.mark.scenario("name") and is parametrized over
the client names; each (client, scenario) ends as one line

    RESULT <client> <scenario> PASS|FAIL [detail]

A test that calls `not_applicable(why)` (only for a scenario the library has
no API for) reports `PASS n/a: <why>`; any other skip is a FAIL.

With STROM_RESULTS_FILE set (run.sh sets it) the lines are appended to that
file as each test ends and the collected (client, scenario) pairs are written
to STROM_RESULTS_FILE.expected, so run.sh can report FAIL for any pair a
killed run never finished. Without it, the lines are printed at the end.
"""

import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

import clients

NA_PREFIX = "n/a: "

_results = {}  # nodeid -> {"pair": (client, scenario), "status": ..., "detail": ...}
_order = []


def not_applicable(why):
    pytest.skip(NA_PREFIX + why)


def pytest_configure(config):
    config.addinivalue_line("markers", "scenario(name): the compat scenario this test reports as")


def _pair(item):
    m = item.get_closest_marker("scenario")
    if m is None or not hasattr(item, "callspec"):
        return None
    # STROM_CLIENT_SUFFIX names the target in RESULT lines (e.g. "-3-nodes").
    suffix = os.environ.get("STROM_CLIENT_SUFFIX", "")
    return (item.callspec.params["client"] + suffix, m.args[0])


def pytest_collection_finish(session):
    path = os.environ.get("STROM_RESULTS_FILE")
    if path:
        with open(path + ".expected", "w") as f:
            for item in session.items:
                pair = _pair(item)
                if pair:
                    f.write(f"{pair[0]} {pair[1]}\n")


def _one_line(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    pair = _pair(item)
    if pair is None:
        return
    r = _results.get(item.nodeid)
    if r is None:
        r = _results[item.nodeid] = {"pair": pair, "status": "PASS", "detail": ""}
        _order.append(item.nodeid)
    if r["status"] == "FAIL":
        pass  # keep the first failure's detail
    elif rep.skipped:
        msg = str(call.excinfo.value) if call.excinfo else ""
        if msg.startswith(NA_PREFIX):
            r["detail"] = msg
        else:
            r["status"], r["detail"] = "FAIL", "skipped: " + msg
    elif rep.failed:
        if call.excinfo is not None:
            # The first line: the assertion's own message, or the bare assert.
            first = (str(call.excinfo.value).strip().splitlines() or [""])[0]
            detail = f"{call.excinfo.typename}: {first}"
        else:
            detail = str(rep.longrepr)
        r["status"] = "FAIL"
        r["detail"] = f"[{rep.when}] " + detail if rep.when != "call" else detail
    if rep.when == "teardown":
        line = _line(r)
        path = os.environ.get("STROM_RESULTS_FILE")
        if path:
            with open(path, "a") as f:
                f.write(line + "\n")


def _line(r):
    client, scenario = r["pair"]
    detail = _one_line(r["detail"]) if r["detail"] else ""
    return f"RESULT {client} {scenario} {r['status']}{' ' + detail if detail else ''}"


def pytest_terminal_summary(terminalreporter):
    if os.environ.get("STROM_RESULTS_FILE"):
        return
    terminalreporter.section("RESULT lines")
    for nodeid in _order:
        terminalreporter.write_line(_line(_results[nodeid]))


@pytest.fixture
def cli(client):
    """The adapter for this test's client, closed (with everything it made) after."""
    c = clients.ADAPTERS[client](os.environ.get("STROM_BOOTSTRAP", "127.0.0.1:9092"))
    yield c
    c.close()


@pytest.fixture
def topic(request, client):
    """A topic name no other test uses."""
    m = request.node.get_closest_marker("scenario")
    return f"py-{client}-{m.args[0]}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def private_broker(tmp_path):
    """A broker of this test's own, for a scenario that could leave a broker
    unusable for the tests after it: the binary and flags run.sh uses, plus
    --auto-create-topics false (so a consumer's Metadata request cannot
    re-create a topic the test deleted). Yields its bootstrap address; killed
    after 5 s if SIGTERM does not stop it."""
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    binary = os.environ.get("STROM_BIN") or os.path.join(root, "target", "release", "strom")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        addr = f"127.0.0.1:{s.getsockname()[1]}"
    log_path = tmp_path / "strom.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [binary, "--listen", addr, "--data-dir", str(tmp_path / "data"), "--num-partitions", "1",
             "--set", "group.initial.rebalance.delay.ms=0", "--auto-create-topics", "false"],
            stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while b"strom started" not in log_path.read_bytes():
            assert proc.poll() is None, f"private broker exited: {log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "private broker did not start in 30 s"
            time.sleep(0.02)
        yield addr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def private_cli(client, private_broker):
    """The adapter for this test's client, against the test's own broker."""
    c = clients.ADAPTERS[client](private_broker)
    yield c
    c.close()
