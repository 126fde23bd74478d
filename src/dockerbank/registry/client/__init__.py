"""The registry client: credentials and tokens (``auth``), HTTP (``transport``), ``pull`` and ``push``."""
