#!/usr/bin/env bash
# Refresh requirements/test.txt, the exact versions (with their hashes) that CI and contributors install:
# every dependency of the package and of its test and dev extras, resolved for Python 3.11 on Linux and
# elsewhere.  Run it after changing a dependency in pyproject.toml (or to take newer releases), then run
# the tests and commit both files.  Extra arguments go to `uv pip compile` (e.g. --upgrade-package torch).
# Where this machine caps a release (/etc/xdg/pip/constraints.txt: the torch builds on its disk), the lock
# keeps within the cap, so that CI installs what was tested.
set -euo pipefail
cd "$(dirname "$0")/.."
caps=()
if [[ -f /etc/xdg/pip/constraints.txt ]]; then
    caps=(--constraint /etc/xdg/pip/constraints.txt)
fi
uv pip compile pyproject.toml --extra test --extra dev --universal --python-version 3.11 --generate-hashes \
    --no-strip-markers --custom-compile-command scripts/lock.sh "${caps[@]}" --output-file requirements/test.txt "$@"
