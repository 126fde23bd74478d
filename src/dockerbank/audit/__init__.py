"""Audit: images as black boxes (layers and config, never run), their inventory and SBOMs.

An operations-layer package: it reads the engine's image store and never imports the
transports (cli/, api/). Pure rule logic (findings, configcheck, secrets, inventory) is
apart from the one module that reads layers (layerscan) and the service that caches results.
"""
