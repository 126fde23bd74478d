#!/usr/bin/env bash
# Install everything Dockerbank and its tests need on a fresh Debian 12 host, as root:
# system packages by apt-get, the Python package in a virtual environment.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
venv="${DOCKERBANK_VENV:-/opt/dockerbank-venv}"
export DEBIAN_FRONTEND=noninteractive

packages=(
  python3 python3-venv python3-pip      # the interpreter the venv is made from
  crun runc conmon tini                 # OCI runtimes, the per-container monitor, run --init
  busybox-static debootstrap            # base images built locally: nothing is pulled
  iproute2 iptables nftables netavark aardvark-dns  # the network stack
  fuse-overlayfs uidmap procps psmisc zstd xz-utils ca-certificates
  slirp4netns                           # rootless Dockerbank: its networks' way out and published ports
)
# npm installs the dashboard's browser libraries (xterm.js) from the npm registry by their lock file
command -v npm >/dev/null || packages+=(npm)
test_packages=(
  docker.io podman skopeo               # real peers for compatibility tests and benchmarks
  catatonit                             # podman kube play's pause (infra) image: the peer of bench/kube_play.py
  hyperfine
  docker-registry                       # distribution 2.8 (the seed's registry:2): peer of the registry bench
  curl                                  # network tests fetch through published ports and from inside netns
  docker-compose                        # compose 1.29 (Python): a real client of the Engine API service
  podman-compose                        # peer of the compose bench on podman
  restic                                # peer of the encrypted-backup bench (bench/backup_remote.py)
  openssh-server                        # sshd started by tests/integration/test_backup_sftp.py on 127.0.0.1
  prometheus                            # scrapes `system service --metrics-addr` in tests; promtool checks the rules
  rsyslog                               # receives containers' lines through the syslog log driver in tests
  chromium chromium-driver              # the dashboard's tests drive a real headless browser (Selenium)
  rpm                                   # rpmbuild + rpm make a real rpmdb.sqlite for the audit's rpm inventory test
  postgresql-client                     # psql: the catalog's test queries the deployed PostgreSQL over its port
)
want=("${packages[@]}")
if [ "${1:-}" = "--with-tests" ]; then want+=("${test_packages[@]}"); fi

missing=()
for pkg in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv "$venv"
fi
extra=""
[ "${1:-}" = "--with-tests" ] && extra="[test]"
"$venv/bin/pip" install -q --disable-pip-version-check -e "$here$extra"
# Byte-compile up front: every CLI call pays its imports, and PYTHONDONTWRITEBYTECODE may be set.
"$venv/bin/python" -m compileall -q -j 0 "$here/src" "$venv/lib" >/dev/null || true
# The command on PATH: the warm helper's client in two lines (pip's console script imports `re`
# first, a few ms of every call; docs/warm.md). Written beside and renamed: never through a link.
printf '#!%s\nfrom dockerbank.warm.client import main\nmain()\n' "$venv/bin/python3" > /usr/local/bin/.dockerbank.new
chmod 755 /usr/local/bin/.dockerbank.new
mv -f /usr/local/bin/.dockerbank.new /usr/local/bin/dockerbank
# The dashboard's console (xterm.js): exactly the versions package-lock.json pins, served from node_modules.
npm ci --prefix "$here/src/dockerbank/dashboard/frontend" --omit=dev --no-audit --no-fund --loglevel=error >/dev/null
echo "dockerbank installed: $(command -v dockerbank) ($("$venv/bin/python" --version))"
