"""The embedded headless simulator: MuJoCo physics behind real ROS 2 topics (``simtwin-sim``).

Runs in its own process. ``world/`` reads descriptions into specs, ``engine/`` simulates them,
``node``/``topics``/``runner`` speak ROS 2 and pace time, ``forkserver`` starts it warm. May import only
``errors`` and ``control.protocol`` from the rest of the package (checked by tests/test_architecture.py).
"""
