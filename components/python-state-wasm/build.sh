#!/usr/bin/env bash
# Builds the Python state store into a WebAssembly component.
# Usage: build.sh OUT.wasm   (works from any directory; OUT is relative to the caller's cwd)
# Needs componentize-py (pinned in ../requirements.txt) on PATH or importable by python3.
set -euo pipefail

fail() { echo "build.sh: error: $*" >&2; exit 1; }

[[ $# -eq 1 && -n "$1" ]] || fail "usage: $0 OUT.wasm"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
wit="$(cd "$here/../../wit" && pwd)" || fail "WIT folder $here/../../wit not found"
want_version="$(sed -n 's/^componentize-py==\([^ ]*\).*/\1/p' "$here/../requirements.txt" 2>/dev/null || true)"

out="$1"
[[ "$out" = /* ]] || out="$PWD/$out"
out_dir="$(dirname "$out")"
mkdir -p "$out_dir" || fail "cannot create $out_dir"

if command -v componentize-py >/dev/null 2>&1; then
    cpy=(componentize-py)
elif python3 -c 'import componentize_py' >/dev/null 2>&1; then
    cpy=(python3 -c 'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())')
else
    fail "componentize-py not found; run: python3 -m pip install -r $here/../requirements.txt"
fi
have_version="$("${cpy[@]}" --version | awk '{print $NF}')"
if [[ -n "$want_version" && "$have_version" != "$want_version" ]]; then
    echo "build.sh: warning: componentize-py $have_version, pinned $want_version" >&2
fi

# Work in a temp dir: componentize-py generates the bindings on the fly there, and only
# the two modules of this component are on the Python path (nothing else gets bundled).
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir "$work/src"
cp "$here/app.py" "$here/../python-state-logic/store.py" "$work/src/"

cd "$work"
# An empty VIRTUAL_ENV (with an empty site-packages) keeps componentize-py from adding the host's site-packages.
mkdir -p venv/lib/python3.11/site-packages
VIRTUAL_ENV="$work/venv" "${cpy[@]}" -d "$wit" -w state-component \
    componentize -p "$work/src" -o "$work/out.wasm" app \
    || fail "componentize-py failed"

# A component, not a core module: bytes 4..8 are 0d 00 01 00.
header="$(od -An -tx1 -N8 "$work/out.wasm" | tr -d ' \n')"
[[ "$header" == "0061736d0d000100" ]] || fail "output is not a component (header $header)"

mv -f "$work/out.wasm" "$out"
echo "build.sh: wrote $out ($(stat -c %s "$out") bytes)"
