#!/usr/bin/env bash
# Runs every test of plughost on a fresh machine: installs what the tests
# need, then `cargo test` (unit, integration, CLI and doc tests; examples are
# built). Usage: ./scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."

# The Python gRPC state component (tests start it as a process).
python3 -m pip install --quiet --disable-pip-version-check -r components/python-state-grpc/requirements.txt

cargo test --locked "$@"
