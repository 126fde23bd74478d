"""Engine-wide maintenance: ``system check`` (crash repair) and ``system df`` (disk usage)."""
