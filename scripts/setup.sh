#!/usr/bin/env bash
# Set up .venv from the lock files in requirements/: `setup.sh serve` installs the runtime
# dependencies only (requirements/serve.txt), `setup.sh test` adds the test and lint tools
# (requirements/test.txt). Needs only python3 (3.11+) and pip's index.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-serve}
# The interpreter's real path (not a shim's), so .venv is made on the real one.
PYTHON=$("${PYTHON:-python3}" -c 'import sys; print(sys.executable)') \
  || { echo "${PYTHON:-python3} does not run: set PYTHON to a Python 3.11 or newer" >&2; exit 1; }
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "nabla needs Python 3.11 or newer; $PYTHON is older (set PYTHON)" >&2; exit 1; }

# uv, at the version pyproject.toml requires, in .uv/: pip installs it there from the index
# pip is configured with. --target needs neither root, a venv module nor --user, and an
# externally managed system Python (PEP 668) allows it.
uv_version=$("$PYTHON" -c 'import tomllib
print(tomllib.load(open("pyproject.toml", "rb"))["tool"]["uv"]["required-version"].lstrip("="))')
if [[ "$(.uv/bin/uv --version 2>/dev/null)" != "uv $uv_version "* ]]; then
  rm -rf .uv
  PIP_ROOT_USER_ACTION=ignore "$PYTHON" -m pip install --quiet --disable-pip-version-check \
    --target .uv "uv==$uv_version"
fi

# The venv runs on this python3; uv never downloads an interpreter of its own.
export UV_PYTHON="$PYTHON" UV_PYTHON_DOWNLOADS=never
uv=(.uv/bin/uv pip)
[ -x .venv/bin/python ] || .uv/bin/uv venv --quiet .venv
# Every package at the version and hash the lock file pins (--require-hashes).
case "$mode" in
  # Install, not sync: serving never removes the test tools that `setup.sh test` installed.
  serve) "${uv[@]}" install --quiet --python .venv --require-hashes -r requirements/serve.txt ;;
  # Sync: the test run sees the lock's packages and nothing else.
  test) "${uv[@]}" sync --quiet --python .venv --require-hashes requirements/test.txt ;;
  *) echo "usage: scripts/setup.sh [serve|test]" >&2; exit 2 ;;
esac
# nabla itself, editable, with no dependencies of its own choosing.
"${uv[@]}" install --quiet --python .venv --no-deps --editable .
