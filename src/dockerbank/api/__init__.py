"""The Docker Engine API service: real Docker clients (the docker CLI, docker-py, docker-compose)
drive the same engine the ``dockerbank`` CLI calls."""
