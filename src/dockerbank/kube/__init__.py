"""``dockerbank kube``: Kubernetes manifests from stacks and containers (``generate``) and
manifests run locally (``play``/``down``).

A transport over compose's model: ``generate`` turns a normalised compose project (a file, a
running stack, or containers described as one) into manifests; ``play`` turns manifests into a
compose project and runs it with compose's own ``Stack`` (networks, volumes, aliases, ordering,
healthchecks), so no operation's logic is copied here. Pure translation lives in
:mod:`~dockerbank.kube.generate`, :mod:`~dockerbank.kube.play` and :mod:`~dockerbank.kube.fields`;
the side effects (image store look-ups, files of ConfigMaps and Secrets, the engine) in
:mod:`~dockerbank.kube.runner`.
"""
