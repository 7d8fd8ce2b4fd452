#!/usr/bin/env bash
# Builds the JavaScript state store into a WebAssembly component with componentize-js.
# Usage: build.sh OUT.wasm   (from any directory; OUT is relative to the caller's cwd)
# Needs this folder's node_modules: `npm ci` here (scripts/test.sh does it). Works offline:
# the JS engine (StarlingMonkey) and wizer come inside the npm packages.
set -euo pipefail

fail() { echo "build.sh: error: $*" >&2; exit 1; }
[[ $# -eq 1 && -n "$1" ]] || fail "usage: $0 OUT.wasm"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$1"
[[ "$out" = /* ]] || out="$PWD/$out"
mkdir -p "$(dirname "$out")" || fail "cannot create $(dirname "$out")"
cjs="$here/node_modules/.bin/componentize-js"
[[ -x "$cjs" ]] || fail "componentize-js not installed; run: npm ci --prefix $here"

# No wasi:http imports (plughost links WASI p2 without HTTP): disable `http` and `fetch-event`.
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
(cd "$here" && "$cjs" store.js --wit ../../wit --world-name state-component --disable http fetch-event -o "$tmp") \
    || fail "componentize-js failed"
header="$(od -An -tx1 -N8 "$tmp" | tr -d ' \n')"
[[ "$header" == "0061736d0d000100" ]] || fail "output is not a component (header $header)"
mv -f "$tmp" "$out"
echo "build.sh: wrote $out ($(stat -c %s "$out") bytes)"
