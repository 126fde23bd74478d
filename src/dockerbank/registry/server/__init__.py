"""The registry server: storage of its own (``storage``) and the OCI distribution HTTP app (``app``)."""
