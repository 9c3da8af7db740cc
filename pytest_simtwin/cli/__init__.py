"""The ``simtwin`` command: one module per sub-command, each registering itself with :func:`main`'s parser.

May import every folder but ``plugin``.
"""
