#!/usr/bin/env bash
# `make bench`: builds the release binaries the benchmarks start (the six functions, the local
# stack, and infra/bench with its hello-world Lambda baseline) in one cargo invocation, then runs
# `zoom-bench run`, which measures against moto and the Zoom simulator on loopback and writes
# docs/benchmarks.md.
#
#   scripts/bench.sh               full run (sweep of 10,000 connections: about 5 minutes of
#                                  measurements after the build)
#   scripts/bench.sh --quick       short run (sweep of 1,000: under a minute of measurements)
#   scripts/bench.sh --sweep-n N   another sweep size
#
# The arm64 package sizes come from target/lambda (made by `make build`); this script does not
# rebuild them. BENCH_BEFORE_BIN_DIR=<dir of an older build's release binaries> adds them to the
# cold-start rounds and instruction counts, labelled "(before)", for a before/after in one run.
# BENCH_BEFORE_STACK=<an older build's release zoom-connector-local> adds a "connector (before)"
# path to the action-overhead runs, interleaved with the current build's.
set -euo pipefail
cd "$(dirname "$0")/.."

# moto, from the project's Python environment (the same one `make test` creates).
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating .venv with moto"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# nginx is the reference proxy of the overhead figure; without it that row says so.
if [ ! -x /usr/sbin/nginx ] && ! command -v nginx >/dev/null; then
  echo "== installing Debian's nginx-light (reference proxy)"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  { $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq nginx-light; } >/dev/null \
    || echo "   nginx could not be installed; the report will say so" >&2
fi

echo "== building release binaries (functions, local stack, bench)"
build_started=$(date +%s)
cargo build --release \
  -p zoom-connector-bench -p zoom-connector-local \
  -p connect -p callback -p actions -p refresh -p meeting-events -p webhooks
BENCH_BUILD_SECS=$(( $(date +%s) - build_started ))
export BENCH_BUILD_SECS
echo "   build took ${BENCH_BUILD_SECS} s"

exec target/release/zoom-bench run "$@"
