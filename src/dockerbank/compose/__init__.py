"""``dockerbank compose``: stacks described by the Compose Specification, over the engine.

load (files, interpolation, include, extends, profiles; :mod:`.loader`) -> validate
(:mod:`.schema`) -> a normalised model (:mod:`.model`) -> a plan against what runs
(:mod:`.plan`, pure, labels as docker-compose 1.29 sets them) -> execution by the engine's
methods (:mod:`.executor`). Only the last step has side effects.
"""
