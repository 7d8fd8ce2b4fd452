#!/usr/bin/env bash
# Builds {{name}}.wasm (world {{world}}) from {{snake_name}}.py with componentize-py.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m plughost_component build {{snake_name}}:{{camel_name}} --path . --wit "{{wit_dir}}" -o {{name}}.wasm
