"""Thin handlers of the Docker Engine API, one module per resource."""
