#!/usr/bin/env bash
# Runs every test strom has, after installing what they need.
#
#   scripts/test.sh
#
# Installs (idempotently): kcat from Debian packages. Then: format and lint
# checks, the release build, `cargo test` (unit, protocol-tests, compat),
# and the kcat checks against the release binary. Ends with one line
# "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."

passed=0
failed=0
summary=()

record() { # record NAME STATUS
    if [ "$2" -eq 0 ]; then
        passed=$((passed + 1)); summary+=("PASS  $1")
    else
        failed=$((failed + 1)); summary+=("FAIL  $1")
    fi
}

install_packages() {
    local missing=()
    command -v kcat >/dev/null 2>&1 || missing+=(kcat)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "== installing ${missing[*]}"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >/dev/null
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
test_log=$(mktemp)
cargo test --all-targets 2>&1 | tee "$test_log"
cargo_status=${PIPESTATUS[0]}
# Count individual cargo tests into the totals.
read -r cargo_passed cargo_failed < <(awk '/^test result:/ {
    for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) }
} END { print p + 0, f + 0 }' "$test_log")
passed=$((passed + cargo_passed)); failed=$((failed + cargo_failed))
if [ "$cargo_status" -ne 0 ] && [ "$cargo_failed" -eq 0 ]; then
    failed=$((failed + 1))   # a build or harness failure with no test counted
fi
summary+=("cargo test: $cargo_passed passed, $cargo_failed failed (exit $cargo_status)")
rm -f "$test_log"

if [ "$build" -eq 0 ]; then
    scripts/kcat-check.sh; record "kcat against the release binary" $?
else
    record "kcat against the release binary (no binary)" 1
fi

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
