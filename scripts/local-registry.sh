#!/usr/bin/env bash
# The journeys' registry, idempotent: a berth-registry on 127.0.0.1:5000 with a user and
# password, holding base images bootstrapped from Debian packages, and berthd's docker.io
# pointed at it (hub-endpoint in /etc/berth/daemon.json).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$here/.venv/bin"
export PATH="$bin:$PATH"
# Archives bootstrapped earlier the same day are reused (keyed by recipe and mirror).
export BERTH_BOOTSTRAP_CACHE="${BERTH_BOOTSTRAP_CACHE:-/var/cache/berth-bootstrap}"
state="${BERTH_LOCAL_REGISTRY_ROOT:-/var/lib/berth-registry}"
port="${BERTH_LOCAL_REGISTRY_PORT:-5000}"
addr="127.0.0.1:$port"
user="demo"
images=(busybox:latest python:3.11-slim nginx:latest)

mkdir -p "$state/data"
chmod 700 "$state"
if [ ! -s "$state/password" ]; then
  (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$state/password")
fi
password="$(cat "$state/password")"
if [ ! -s "$state/htpasswd" ] || ! htpasswd -vb "$state/htpasswd" "$user" "$password" >/dev/null 2>&1; then
  htpasswd -Bbc "$state/htpasswd" "$user" "$password" >/dev/null 2>&1
fi

# 1. The registry server.
if ! curl -fsS -o /dev/null "http://$addr/v2/" -w '' 2>/dev/null && \
   [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/")" != "401" ]; then
  echo "local-registry: starting berth-registry on $addr (data in $state/data)"
  nohup "$bin/berth-registry" serve --listen "$addr" --root "$state/data" \
    --htpasswd "$state/htpasswd" --anonymous-pull >> "$state/registry.log" 2>&1 &
  echo $! > "$state/registry.pid"
  for _ in $(seq 50); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "http://$addr/v2/" || true)"
    [ "$code" = "401" ] || [ "$code" = "200" ] && break
    sleep 0.2
  done
fi

# 2. berthd's docker.io goes to it.
mkdir -p /etc/berth
want="{\"hub-endpoint\": \"http://$addr\"}"
if [ ! -f /etc/berth/daemon.json ] || ! grep -q "\"http://$addr\"" /etc/berth/daemon.json; then
  echo "$want" > /etc/berth/daemon.json
  if [ -f /run/berth/berthd.pid ] && kill -0 "$(cat /run/berth/berthd.pid)" 2>/dev/null; then
    echo "local-registry: restarting berthd to read /etc/berth/daemon.json"
    kill "$(cat /run/berth/berthd.pid)"
    sleep 1
  fi
fi
berth version >/dev/null   # starts berthd if it is not running

# 3. Base images, bootstrapped from Debian packages, pushed once.
seeded=0
for img in "${images[@]}"; do
  repo="${img%%:*}"; tag="${img##*:}"
  if curl -fsS -u "$user:$password" "http://$addr/v2/library/$repo/tags/list" 2>/dev/null | grep -q "\"$tag\""; then
    continue
  fi
  if [ "$seeded" = 0 ]; then
    echo "$password" | berth login -u "$user" --password-stdin "$addr" >/dev/null
    seeded=1
  fi
  berth bootstrap "$img"
  berth tag "$img" "$addr/library/$img"
  berth push "$addr/library/$img"
  berth rmi "$addr/library/$img" "$img" >/dev/null
done
[ "$seeded" = 1 ] && berth logout "$addr" >/dev/null
echo "local-registry: $addr serves ${images[*]} as docker.io; user '$user', password in $state/password"
