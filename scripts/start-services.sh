#!/usr/bin/env bash
# Start the services the compatibility tests and benchmarks talk to (dockerd from Debian's docker.io).
# Idempotent: a running dockerd is left alone.
set -euo pipefail
if ! docker info >/dev/null 2>&1; then
  nohup dockerd >/var/log/dockerbank-test-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerbank-test-dockerd.log" >&2; exit 1; }
fi
echo "dockerd ready: $(docker version --format '{{.Server.Version}}')"
