#!/usr/bin/env bash
# Runs every test of plughost on a fresh machine: installs what the tests
# need, then `cargo test` (unit, integration, CLI and doc tests; examples are
# built). Usage: ./scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --locked "$@"
