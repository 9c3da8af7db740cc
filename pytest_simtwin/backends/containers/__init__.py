"""Container simulators: the docker backend, image builds without a registry, the leftover-container reaper.

All docker SDK access goes through :mod:`.client` (``connect``, ``sdk``). May import what ``backends`` may.
"""
