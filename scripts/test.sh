#!/usr/bin/env bash
# Runs every test of plughost on a fresh machine: installs what the tests
# need (the wasm32-wasip2 target for the WASM guests, the Python packages for
# the Python components), then `cargo test` (unit, integration, CLI and doc
# tests; examples are built). Usage: ./scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    rustup target add wasm32-wasip2
fi
python3 -m pip install --quiet --disable-pip-version-check -r components/requirements.txt
# The Python component SDK, from the repository (the tests import it from there too).
python3 -m pip install --quiet --disable-pip-version-check ./components/sdk/python
# componentize-js and jco for the JavaScript component (pinned in its package-lock.json),
# installed into components/js-state/node_modules; again only when the lock file changed.
if ! command -v npm >/dev/null 2>&1; then
    sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_="sudo"
    $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq nodejs npm >/dev/null
fi
if ! cmp -s components/js-state/package-lock.json components/js-state/node_modules/.plughost-installed-lock; then
    npm ci --prefix components/js-state --no-audit --no-fund --silent
    cp components/js-state/package-lock.json components/js-state/node_modules/.plughost-installed-lock
fi
# state.redis / pubsub.redis tests start their own redis-server on free ports
# (no system service is used).
if ! command -v redis-server >/dev/null 2>&1; then
    sudo_=""; [[ $(id -u) -eq 0 ]] || sudo_="sudo"
    $sudo_ apt-get update -qq && $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

cargo test --locked "$@"
