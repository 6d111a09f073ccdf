#!/usr/bin/env bash
# Build berth's base images from Debian packages into a directory, without a daemon:
#   bash scripts/bootstrap-images.sh [OUTDIR] [NAME:TAG ...]
# Default OUTDIR is ./bootstrap-images, default images every recipe (busybox:latest,
# debian:bookworm-slim, debian:bookworm, python:3.11-slim, nginx:latest). Archives built
# earlier the same day are reused from $BERTH_BOOTSTRAP_CACHE (default
# /var/cache/berth-bootstrap). Load them with `berth load -i FILE` or `docker load -i FILE`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-bootstrap-images}"
shift || true
cache="${BERTH_BOOTSTRAP_CACHE:-/var/cache/berth-bootstrap}"
exec "$here/.venv/bin/python" -m berth.bootstrap --output "$out" --cache "$cache" "$@"
