"""One simulation session, independent of pytest: settings, the worker's SimSession, the ``Sim`` handle.

Owns starting, health-checking, resetting and stopping a simulator for one process (a pytest worker or a
pool member). May import ``backends``, ``control``, ``ros``, ``results`` (records), ``_internal``, ``errors``.
"""
