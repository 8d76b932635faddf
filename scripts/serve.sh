#!/usr/bin/env bash
# Set up (scripts/setup.sh) and start nabla on http://127.0.0.1:8000 (override with HOST/PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m uvicorn app.main:app --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
