#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's Chromium; install it when missing (CI runs as root).
command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
.venv/bin/ruff check app schemas tests bench
.venv/bin/mypy
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
