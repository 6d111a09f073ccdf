#!/usr/bin/env bash
# berth set-up for a fresh Debian 12 machine, as root. Idempotent.
#   bash scripts/setup.sh run    install everything, then run the hello-world journey
#   bash scripts/setup.sh test   install everything, then run the whole test suite
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-run}"

# Debian packages berth needs at run time, and the peers the tests compare against.
runtime_pkgs=(busybox-static mmdebstrap nftables iptables iproute2 libseccomp2 python3-seccomp
              python3-venv python3-dev ca-certificates curl pigz tini)
peer_pkgs=(runc crun docker.io containerd podman docker-registry skopeo umoci apache2-utils tmux wrk)

missing=()
for p in "${runtime_pkgs[@]}" "${peer_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Debian's docker.io package must not leave a dockerd of its own running on defaults:
# tests start their own, isolated ones.
# A virtualenv on Debian's python3, without the system site-packages: every berth program
# starts an interpreter, and the system dist-packages' .pth files would run at each start.
# The one Debian module berth needs, python3-seccomp (libseccomp's own binding), is linked in.
venv="$here/.venv"
if [ -f "$venv/pyvenv.cfg" ] && grep -q "include-system-site-packages = true" "$venv/pyvenv.cfg"; then
  echo "setup: recreating $venv without the system site-packages" >&2
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
seccomp_so="$(dpkg -L python3-seccomp | grep -E '/seccomp[^/]*\.so$' | head -n1)"
site_dir="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
ln -sfn "$seccomp_so" "$site_dir/$(basename "$seccomp_so")"
stamp="$venv/.installed-$(cat "$here/pyproject.toml" "$here"/bin/* | sha256sum | cut -c1-16)"
if [ ! -e "$stamp" ] || [ ! -e "$venv/bin/berth" ]; then
  "$venv/bin/pip" install -q -e "$here[test]"
  touch "$stamp"
fi

case "$mode" in
  run)
    exec bash "$here/scripts/hello.sh"
    ;;
  test)
    exec bash "$here/scripts/test.sh"
    ;;
  install)
    ;;
  *)
    echo "usage: setup.sh run|test|install" >&2; exit 2;;
esac
