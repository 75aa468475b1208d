#!/usr/bin/env bash
# `make build`: the six arm64 Lambda packages with SAM's rust-cargolambda build method.
# cargo-lambda (from PyPI) cross-compiles with Zig (also from PyPI); every function builds in
# the one workspace target dir, so the AWS SDK is compiled once, not once per function.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv-build/.requirements.sha256
want=$(sha256sum requirements-build.txt | cut -d' ' -f1)
if [ ! -x .venv-build/bin/sam ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating .venv-build with SAM CLI, cargo-lambda and Zig"
  python3 -m venv .venv-build
  .venv-build/bin/pip install --quiet --disable-pip-version-check -r requirements-build.txt
  echo "$want" > "$stamp"
fi
rustup target add aarch64-unknown-linux-gnu >/dev/null
export PATH="$PWD/.venv-build/bin:$PATH"
export SAM_CLI_TELEMETRY=0

# Offline template validation (SAM's translator + cfn-lint); make test runs cfn-lint too.
sam validate --lint --region "${AWS_REGION:-us-east-1}"

# Compile all six functions in one cargo invocation (shared dependency graph, one target dir).
cargo lambda build --release --arm64 \
  --bin connect --bin callback --bin actions --bin refresh --bin meeting-events --bin webhooks

# SAM then builds in source: cargo finds everything up to date and SAM packages the bootstraps.
sam build --beta-features --build-in-source --parallel "$@"
scripts/package-sizes.sh
