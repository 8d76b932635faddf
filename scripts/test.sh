#!/usr/bin/env bash
# Set up .venv with the test and lint tools, then run every check: ruff, mypy, hadolint and
# the whole pytest suite (arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
# The browser tests drive Debian's Chromium: install it when missing (CI runs as root). If that
# fails, say so in one line; then CI (CI=true) fails, and a local run goes on without the
# browser tests, which skip with the same reason (tests/browser/conftest.py).
# The rate-limit tests start a real redis-server (Debian's), installed the same way; without
# it CI fails and a local run skips those tests (tests/redis_support.py).
chromium=/usr/bin/chromium
redis_server=/usr/bin/redis-server
missing=()
[ -x "$chromium" ] || missing+=(chromium)
[ -x "$redis_server" ] || missing+=(redis-server)
if [ "${#missing[@]}" -gt 0 ] && apt-get update -qq >/dev/null 2>&1; then
  for package in "${missing[@]}"; do  # one by one: one that fails leaves the other
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null 2>&1 || true
  done
fi
# require PATH PACKAGE WHAT: a tool the tests need, still missing after the install above:
# one clear line; then CI (CI=true) fails, and a local run goes on without those tests.
require() {
  [ -x "$1" ] && return 0
  if [ "${CI:-}" = true ]; then
    echo "$2 ($1) is missing and 'apt-get install $2' failed: $3 cannot run, so CI fails" >&2
    exit 1
  fi
  echo "$2 ($1) is missing and 'apt-get install $2' failed (it needs root and the Debian" \
       "mirror): $3 will be skipped" >&2
}
require "$redis_server" redis-server "the tests that need Redis"
require "$chromium" chromium "the browser tests"
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
