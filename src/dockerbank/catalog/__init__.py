"""The catalog: applications of biomedical research as compose stacks built offline from Debian
packages (or from a file the user supplies), each with its license, its data volumes and the
backup recipe of each service.

- ``model``: an entry's metadata, loaded and validated (pure but for reading its files);
- ``settings``: a deployment's settings resolved from defaults, ``--set`` and generated secrets (pure);
- ``service``: ``ls``/``show``/``build``/``deploy``/``rm`` over an engine and a stack runner.
"""
