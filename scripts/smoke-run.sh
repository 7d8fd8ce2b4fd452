#!/usr/bin/env bash
# Proves the README's main command: `cargo run -- run` starts plughost on the
# embedded defaults, logs what it loaded, and stops cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

data=$(mktemp -d)
log=$(mktemp)
trap 'rm -rf "$data" "$log"' EXIT
setsid cargo run --locked -- run --data-dir "$data" 2>"$log" &
pid=$!
for _ in $(seq 1 600); do
    grep -q "plughost running" "$log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$log"; echo "smoke: plughost exited early" >&2; exit 1; }
    sleep 1
done
grep -q "plughost running" "$log" || { cat "$log"; echo "smoke: plughost did not start" >&2; exit 1; }
kill -INT -- "-$pid"
wait "$pid"
cat "$log"
grep -q "component=statestore" "$log" && grep -q "component=pubsub" "$log"
echo "smoke: plughost run started on the embedded defaults and stopped cleanly"
