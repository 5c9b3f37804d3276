#!/usr/bin/env bash
# Stop the background server started by scripts/start_all.sh. Idempotent: says so if none runs.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${MILTON_PYTHON:-$repo/.venv/bin/python}"
[ -x "$python" ] || python="$(command -v python3)"
exec "$python" -m milton_lora server stop "$@"
