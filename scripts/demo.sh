#!/usr/bin/env bash
# The main job on a fresh Debian 12 host: install, build a base image locally, run a container in it.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"$here/scripts/setup.sh"
set -x
dockerbank base-image busybox --tag busybox:latest
dockerbank images
dockerbank run --rm --name dockerbank-demo busybox sh -c 'echo "hello from $(hostname), pid $$"; id'
