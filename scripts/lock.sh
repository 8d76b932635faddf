#!/usr/bin/env bash
# Re-make the lock files in requirements/ from pyproject.toml (after changing a dependency):
# every package pinned with its hashes, for every platform (markers choose at install).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh serve >/dev/null  # brings .uv/ with the required uv
compile=(.uv/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11
         --generate-hashes)
"${compile[@]}" -o requirements/test.txt --extra test --extra lint --extra bench
"${compile[@]}" -o requirements/serve.txt
