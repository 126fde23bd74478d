"""Monitoring: Dockerbank's state as Prometheus metrics (an operations-layer client of the engine).

- :mod:`readings`: plain data read from the engine, the cgroups and the backup repository;
- :mod:`families`: pure functions turning readings into metric families, with cAdvisor's
  names and labels for the per-container figures so existing dashboards and alerts work;
- :mod:`backups`: pure summary of backup snapshots (last success, last verify, unprotected age);
- :mod:`verifylog`: where ``backup verify`` records which snapshot passed when;
- :mod:`collector`: the ``prometheus_client`` collector and the text exposition.
"""
