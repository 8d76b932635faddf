#!/usr/bin/env bash
# Set up .venv with the runtime dependencies only, then start nabla as the container does:
# `nabla serve` (NABLA_HOST, default 127.0.0.1; NABLA_PORT, default 8000; WEB_CONCURRENCY).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve
exec .venv/bin/nabla serve "$@"
