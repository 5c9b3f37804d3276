#!/usr/bin/env bash
# Start the configured server (training/configs/serve.yaml) in the background and wait until healthy.
# Run from MILTON_HOME (or set it). Idempotent: says so if a server already runs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${MILTON_PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
exec "$python" -m milton_lora server start "$@"
