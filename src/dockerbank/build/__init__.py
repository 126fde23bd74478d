"""Dockerfile builds: parse, expand, plan (pure) and execute against the engine's stores."""
