"""Networks: IPAM, port publishing, and the netavark driver that sets up bridges and veths.

``model`` (pure data), ``ipam`` and ``ports`` (pure allocation and parsing) are apart from the
side effects in ``netns`` (namespace files), ``netavark`` (the subprocess) and ``service``.
"""

DEFAULT_NETWORK = "bridge"  # Docker's name of the default network (here: runtime needs it without the model)
