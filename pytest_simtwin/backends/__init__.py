"""Simulator backends behind one protocol (:class:`.base.Backend`): embedded, process, attach, docker.

A backend describes its differences through class attributes and hooks (capabilities), never through
its name being checked elsewhere; :func:`.base.backend_class` finds one by name, including third-party
backends registered under the ``pytest_simtwin.backends`` entry point. May import ``ros``, ``control``,
``_internal``, ``errors`` and the simulator's world readers (for recipes such as Gazebo bridge files).
"""
