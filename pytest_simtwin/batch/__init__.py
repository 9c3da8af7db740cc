"""Many simulators at once outside pytest's fixtures: :class:`.pool.SimPool` and the Gymnasium environments.

May import ``helpers``, ``runtime`` and everything below them.
"""
