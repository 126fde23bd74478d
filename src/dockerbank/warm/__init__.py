"""The warm helper: a resident interpreter that has Dockerbank imported, and the tiny client
in front of the CLI that hands it each command line (see docs/warm.md).

This package's ``__init__`` imports nothing: the client is the ``dockerbank`` entry point and
must start on the standard library's built-in modules alone.
"""
