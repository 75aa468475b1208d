#!/usr/bin/env bash
# Fuzzes the HTTP API with schemathesis against the OpenAPI document the connector serves:
# starts the local stack (debug build, built-in Zoom simulator, a fresh data dir), connects
# one simulator user, and runs two passes, one on that connection's routes and one on every
# route with generated ids. Every answer must be a non-5xx (`not_a_server_error`), no
# handler may panic, and the process must be alive and healthy at the end.
#
#   scripts/fuzz.sh --quick   bounded run for `make test`: 50 examples per operation and
#                             phase, fixed seed (well under a minute; 5 minutes at most)
#   scripts/fuzz.sh --long    the longer run of `make fuzz`: 200 examples, 10 minutes per
#                             pass, a new seed each time (printed, to replay a failure)
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:---quick}
case "$mode" in
  # --max-time is a budget schemathesis spends (it repeats fuzzing until it is used up), so
  # the quick run goes without it; `timeout` only guards against a hang.
  --quick) examples=50; budget=(--seed 20261130); guard=300 ;;
  --long) examples=200; budget=(--max-time 600); guard=900 ;;
  *) echo "usage: $0 [--quick|--long]" >&2; exit 2 ;;
esac

[ -x .venv/bin/schemathesis ] || scripts/ensure-test-deps.sh
# `cargo test --workspace` (make test) has just built the debug binary: reuse it.
bin=target/debug/zoom-connector-local
if [ ! -x "$bin" ]; then
  echo "== building zoom-connector-local (debug)"
  cargo build --quiet -p zoom-connector-local
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# The sweep timer stays out of the way (the fuzzer calls /local/refresh/run itself if at all).
RUST_LOG="${RUST_LOG:-warn}" "$bin" --port 0 --data-dir "$work/data" --sweep-interval 3600 \
  >"$work/stdout" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 300); do
  grep -q '^api_key: ' "$work/stdout" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "fuzz: the local stack exited at start" >&2; cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
base=$(sed -n 's/^ready: //p' "$work/stdout")
api_key=$(sed -n 's/^api_key: \([^ ]*\).*/\1/p' "$work/stdout")
sim=$(sed -n 's/^zoom simulator: \([^ ]*\).*/\1/p' "$work/stderr")
if [ -z "$base" ] || [ -z "$api_key" ] || [ -z "$sim" ]; then
  echo "fuzz: the local stack did not report its URL, API key and simulator" >&2
  cat "$work/stdout" "$work/stderr" >&2
  exit 1
fi
connection_id=$(.venv/bin/python tests/fuzz/connect.py "$base" "$api_key" "$sim")
echo "== fuzz ($mode): $base, connection $connection_id, $examples examples per operation"

export ZC_FUZZ_BASE_URL="$base" ZC_FUZZ_API_KEY="$api_key" ZC_FUZZ_CONNECTION_ID="$connection_id"
# One worker: schemathesis' worker threads trip a thread-safety bug of Python 3.11's `ast`
# module ("AST constructor recursion depth mismatch"), reported as a run error.
run() {
  local config=$1
  timeout "$guard" .venv/bin/schemathesis --config-file "$config" run "$base/openapi.json" \
    --checks not_a_server_error --max-examples "$examples" "${budget[@]}" \
    --workers 1 --no-color --warnings off
}
status=0
echo "== fuzz pass 1: one connection's routes"
run tests/fuzz/connected.toml || status=1
echo "== fuzz pass 2: every route, generated ids"
run tests/fuzz/schemathesis.toml || status=1

# A handler that panicked dropped its connection instead of answering.
if grep -q 'panicked at' "$work/stderr"; then
  echo "fuzz: a request handler panicked:" >&2
  grep -A3 'panicked at' "$work/stderr" | head -20 >&2
  status=1
fi
if ! kill -0 "$pid" 2>/dev/null; then
  echo "fuzz: the local stack died during the run" >&2
  tail -20 "$work/stderr" >&2
  status=1
elif ! .venv/bin/python -c "import sys, urllib.request; sys.exit(urllib.request.urlopen('$base/healthz', timeout=10).status != 200)"; then
  echo "fuzz: the local stack no longer answers /healthz" >&2
  status=1
fi
if [ "$status" -eq 0 ]; then
  echo "fuzz: no 5xx, no panic, the stack is healthy"
fi
exit "$status"
