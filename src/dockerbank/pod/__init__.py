"""Pods: containers that share network, IPC and UTS namespaces held by an infra container
(Podman's pods). ``model`` is the pure part, ``store`` the ``pods`` table, ``infra`` the local
pause image, ``service`` the lifecycle over the container service; the use cases every
transport calls are ``engine.pods.PodEngine`` (``engine.pod_ops``)."""
