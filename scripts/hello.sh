#!/usr/bin/env bash
# The main job: prepare the offline registry, then type the hello-world journey exactly as
# README.md writes it.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$here/.venv/bin:$PATH"
bash "$here/scripts/local-registry.sh"
cd "$here"
echo "== hello-world journey (README.md) =="
while IFS= read -r cmd; do
  echo "\$ $cmd"
  eval "$cmd"
done < <("$here/.venv/bin/python" "$here/scripts/journeys.py" hello)
