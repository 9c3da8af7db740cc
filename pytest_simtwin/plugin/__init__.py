"""The pytest plugin (``pytest11`` entry point :mod:`.hooks`): options, markers, typed fixtures, reporting hooks.

Importing it must stay cheap (every pytest run pays for it, with or without simulators), so the
layers below are imported inside hooks and fixtures, with a comment; may import every other folder.
"""
