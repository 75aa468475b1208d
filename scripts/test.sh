#!/usr/bin/env bash
# The whole test suite (`make test`): installs what it needs, then formatting, the Rust tests
# (unit, adapters against moto, end to end against the simulator, the browser test), the SAM
# template checks, a bounded fuzzing run against the local stack, and the supply-chain checks.
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
# The deployed-path tests run the functions' real binaries: build them first (tests never do),
# with the tests in the same build so both share one feature set and nothing builds twice.
cargo build --workspace --all-targets
target_dir="${CARGO_TARGET_DIR:-target}"
rm -f "$target_dir"/deployed-aws-calls*.json
cargo test --workspace --no-fail-fast

echo "== IAM: every AWS call of the deployed-path tests against the functions' policies"
# Each deployed test already failed on a call its function's policy would refuse; this lists
# the grants no test used (and checks all runs together once more).
.venv/bin/python tests/template/iam_calls.py "$target_dir/deployed-aws-calls.json"

echo "== template: cfn-lint and checks"
.venv/bin/cfn-lint template.yaml
.venv/bin/pytest -q tests/template

echo "== fuzz: schemathesis against the local stack (bounded)"
scripts/fuzz.sh --quick

echo "== cargo deny: licenses, bans, sources"
# cargo deny reads the metadata of every platform's crates; a build fetches only this
# platform's, so fetch them all first (a no-op where they are cached).
cargo fetch --locked --quiet
cargo deny --offline --locked --log-level warn check --hide-inclusion-graph --show-stats licenses bans sources

echo "== cargo deny: advisories"
# The RustSec database comes from GitHub, which not every machine reaches: findings fail the
# run, an unreachable database only says so (a cached copy is used when there is one).
if advisories=$(cargo deny --locked --log-level error check advisories 2>&1); then
  echo "advisories ok"
elif grep -q "failed to fetch advisory database" <<<"$advisories"; then
  if compgen -G "$HOME/.cargo/advisory-dbs/*/.git" >/dev/null; then
    echo "advisories: the RustSec database is unreachable; checking against the cached copy"
    cargo deny --offline --locked --log-level error check advisories
  else
    echo "advisories: SKIPPED: the RustSec advisory database is unreachable from this machine and not cached; run \`cargo deny check advisories\` where it can be fetched"
  fi
else
  echo "$advisories"
  exit 1
fi
