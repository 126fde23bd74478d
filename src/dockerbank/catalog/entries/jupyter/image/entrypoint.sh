#!/bin/sh
# The token comes from the secret file (read here as root), the server runs as jovyan.
set -eu
chown jovyan:jovyan /home/jovyan/work
JUPYTER_TOKEN=$(cat /run/secrets/jupyter_token)
export JUPYTER_TOKEN HOME=/home/jovyan
cd /home/jovyan/work
exec setpriv --reuid=jovyan --regid=jovyan --init-groups jupyter notebook --no-browser --ip=0.0.0.0 \
    --port=8888 --notebook-dir=/home/jovyan/work
