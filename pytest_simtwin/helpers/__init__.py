"""What a test body touches: the ``Robot`` helper, nodes under test, assertions and metric recording.

May import ``runtime``, ``control``, ``ros``, ``results``, ``_internal`` and ``errors``; never ``plugin``.
"""
