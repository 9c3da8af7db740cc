"""Backend names -> ``"module:Class"``: the built-in table and the entry-point group, without importing any backend.

Every pytest run checks ``--simtwin-backend`` against these names at configure time; the class itself
is imported (:func:`pytest_simtwin.backends.base.backend_class`) only when a simulator is needed.
"""

from __future__ import annotations

from importlib.metadata import entry_points

#: Entry-point group under which other packages register backends: ``name = "module:Class"``.
ENTRY_POINT_GROUP = "pytest_simtwin.backends"

#: name -> "module:Class", imported only when chosen (docker pulls in the docker SDK).
BACKENDS: dict[str, str] = {
    "embedded": "pytest_simtwin.backends.embedded:EmbeddedBackend",
    "process": "pytest_simtwin.backends.process:ProcessBackend",
    "attach": "pytest_simtwin.backends.attach:AttachBackend",
    "docker": "pytest_simtwin.backends.containers.docker:DockerBackend",
}

#: The backend of a run that names none; its class takes no options of its own and does nothing at
#: session start (tests/test_architecture.py checks it), so the plugin loads it only for a simulator.
DEFAULT_BACKEND = "embedded"


def available_backends() -> dict[str, str]:
    """The built-in backends plus those registered under :data:`ENTRY_POINT_GROUP` by installed packages."""
    found = dict(BACKENDS)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep.value)
    return found


def backend_target(name: str) -> str | None:
    """``"module:Class"`` of backend ``name``; None when no installed package provides it."""
    return BACKENDS.get(name) or available_backends().get(name)
