"""Networks: IPAM, port publishing, and the drivers that set up bridges and veths.

``model`` (pure data), ``ipam``, ``ports`` and ``iptrules`` (pure allocation, parsing, rule text)
are apart from the side effects in ``netns`` (namespace files), ``bridge`` (the in-process driver:
``rtnl`` netlink, iptables-restore, ``aardvark`` files), ``netavark`` (the subprocess) and ``service``.
"""

DEFAULT_NETWORK = "bridge"  # Docker's name of the default network (here: runtime needs it without the model)
