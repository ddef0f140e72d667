#!/usr/bin/env bash
# Fetch and build librdkafka's own test suite (Debian source package) into
# the cache dir. Idempotent: every step is skipped when already done.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${STROM_CACHE:-$HOME/.cache/strom}/librdkafka
mkdir -p "$CACHE"

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

src_dir() { find "$CACHE" -maxdepth 1 -type d -name 'librdkafka-*' | sort | tail -1; }

ensure_deb_src() {
    # deb-src entries derived from the machine's own apt sources.
    grep -rqs '^Types:.*deb-src\|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null && return 0
    local tmp f
    tmp=$(mktemp)
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        # deb822 stanzas: keep each stanza that has "Types: deb", rename it to deb-src.
        awk 'BEGIN{RS=""; ORS="\n\n"} /(^|\n)Types:[^\n]*deb/ {gsub(/Types:[^\n]*/, "Types: deb-src"); print}' "$f" >>"$tmp"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        grep -E '^deb ' "$f" | sed 's/^deb /deb-src /' >>"${tmp}.list" || true
    done
    [ -s "$tmp" ] && $SUDO cp "$tmp" /etc/apt/sources.list.d/strom-deb-src.sources
    [ -s "${tmp}.list" ] && $SUDO cp "${tmp}.list" /etc/apt/sources.list.d/strom-deb-src.list
    rm -f "$tmp" "${tmp}.list"
    $SUDO apt-get update -qq
}

SRC=$(src_dir)
if [ -z "$SRC" ] || [ ! -x "$SRC/tests/test-runner" ]; then
    ensure_deb_src
    # Build dependencies (and the package's source, once); the apt lists of a
    # fresh machine may not know the source packages yet.
    if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq librdkafka; then
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq librdkafka
    fi
    [ -n "$SRC" ] || (cd "$CACHE" && apt-get source -qq librdkafka)
fi

SRC=$(src_dir)
cd "$SRC"
if [ ! -f Makefile.config ]; then
    ./configure >"$CACHE/configure.out" 2>&1
fi
if [ ! -f src/librdkafka.a ] && [ ! -f src/librdkafka.so.1 ]; then
    make -j"$(nproc)" libs >"$CACHE/make.out" 2>&1
fi
if [ ! -x tests/test-runner ]; then
    make -C tests -j"$(nproc)" build >"$CACHE/tests-make.out" 2>&1
fi
# kafka-topics.sh stand-in (tests that call test_kafka_topics()).
SHIM=$CACHE/kafka-shim/bin
if [ ! -x "$SHIM/kafka-topics" ] || [ "$HERE/kafka-topics.c" -nt "$SHIM/kafka-topics" ]; then
    mkdir -p "$SHIM"
    cc -O1 -Wall -I"$SRC/src" -o "$SHIM/kafka-topics" "$HERE/kafka-topics.c" \
        -L"$SRC/src" -Wl,-rpath,"$SRC/src" -lrdkafka
    printf '#!/bin/sh\nexec "%s/kafka-topics" "$@"\n' "$SHIM" >"$SHIM/kafka-topics.sh"
    chmod +x "$SHIM/kafka-topics.sh"
fi
echo "$SRC"
