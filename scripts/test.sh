#!/usr/bin/env bash
# Runs ruff and the whole pytest suite from the project's virtualenv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest -ra -p no:cacheprovider "$@" tests
