#!/usr/bin/env bash
# The whole test suite (`make test`): installs what it needs, then formatting, the Rust tests
# (unit, adapters against moto, end to end against the simulator, the browser test), and the
# SAM template checks.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-test-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo test"
# The harness starts moto from this interpreter (never skipped: a missing moto fails).
export MOTO_PYTHON="$PWD/.venv/bin/python"
export CHROMEDRIVER="${CHROMEDRIVER:-$(command -v chromedriver)}"
export CHROMIUM="${CHROMIUM:-$(command -v chromium)}"
cargo test --workspace --no-fail-fast

echo "== template: cfn-lint and checks"
.venv/bin/cfn-lint template.yaml
.venv/bin/pytest -q tests/template
