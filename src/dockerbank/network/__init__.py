"""Networks: IPAM, port publishing, and the netavark driver that sets up bridges and veths.

``model`` (pure data), ``ipam`` and ``ports`` (pure allocation and parsing) are apart from the
side effects in ``netns`` (namespace files), ``netavark`` (the subprocess) and ``service``.
"""
