#!/usr/bin/env bash
# Installs what the test suite needs when it is missing:
# - .venv with the pinned Python tools (moto server, cfn-lint, pytest);
# - Debian's chromium and chromium-driver for the browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-dev.txt | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "== creating .venv with moto, cfn-lint, pytest"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  echo "== installing Debian's chromium and chromium-driver"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq chromium chromium-driver >/dev/null
fi

# cargo-deny for the supply-chain checks (licenses, bans, sources, advisories), pinned; a
# build from crates.io takes a few minutes, once per machine.
deny_version=0.20.2
if [ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $deny_version" ]; then
  echo "== installing cargo-deny $deny_version (a few minutes, once)"
  cargo install --quiet --locked cargo-deny --version "$deny_version"
fi
