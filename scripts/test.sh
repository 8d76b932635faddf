#!/usr/bin/env bash
# Set up, then run every check: ruff, mypy, hadolint and the whole pytest suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The browser tests drive Debian's Chromium; install it when missing (CI runs as root).
command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
.venv/bin/ruff check app schemas tests bench
.venv/bin/mypy
.venv/bin/hadolint Dockerfile
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
