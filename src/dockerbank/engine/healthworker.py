"""The health scheduler's worker process: ``python -m dockerbank.engine.healthworker ROOT RUN_ROOT ID...``.

Started by the scheduler (``container.healthscheduler``) for the probes that are due, it imports
the engine once and probes each container in a thread of its own (each with its own engine and
database connection), then exits: the interpreter and its imports live only while probes run.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path


def probe_all(root: str, run_root: str, cids: list[str]) -> None:
    """Probe ``cids`` in parallel; a failure is one line on stderr (the scheduler's error log)."""
    from dockerbank.config import Config
    from dockerbank.container.healthprobe import probe
    from dockerbank.engine import Engine

    config = Config(root=Path(root), run_root=Path(run_root))

    def one(cid: str) -> None:
        engine = Engine(config)
        try:
            probe(engine.containers, cid)
        except Exception as exc:  # noqa: BLE001  one line in the error log, never a traceback
            print(f"healthcheck of {cid[:12]}: {exc}", file=sys.stderr)
        finally:
            engine.close()

    if len(cids) == 1:
        one(cids[0])
        return
    threads = [threading.Thread(target=one, args=(cid,)) for cid in cids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str]) -> int:
    root, run_root, *cids = argv
    probe_all(root, run_root, cids)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
