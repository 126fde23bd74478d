"""Registries: a client (pull, push, login) and a private registry server (OCI distribution v1.1)."""
