"""``python -m hyperhttp``: the ``hyperhttp`` command (see hyperhttp/cli); with no arguments,
the main job: the load generator against an embedded local server for 5 s."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
