"""pytest-simtwin: simulation-in-the-loop testing and digital-twin validation for ROS 2 robots.

The public API, importable from here: the objects the fixtures give tests (:class:`Robot`,
:class:`Sim`, :class:`RosNodeHelper`, :class:`NodeLauncher`, :class:`MetricRecorder`), the assertions,
:class:`SimPool` and :class:`SimSession` for use outside pytest, and every error class. Names resolve
on first use, so ``import pytest_simtwin`` (which pytest does for the plugin on every run) loads
neither rclpy nor MuJoCo nor numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # fixtures' objects
    "Robot": "pytest_simtwin.helpers.robot",
    "Sim": "pytest_simtwin.runtime.sim",
    "RosNodeHelper": "pytest_simtwin.helpers.nodes",
    "NodeLauncher": "pytest_simtwin.helpers.nodes",
    "NodeProcess": "pytest_simtwin.helpers.nodes",
    "MetricRecorder": "pytest_simtwin.helpers.assertions",
    "TwinValidation": "pytest_simtwin.twin.assertions",
    "FaultInjector": "pytest_simtwin.control.faults",
    "Fault": "pytest_simtwin.control.faults",
    "FaultHandle": "pytest_simtwin.control.faults",
    # assertions and metrics
    "assert_within_tolerance": "pytest_simtwin.helpers.assertions",
    "assert_metric": "pytest_simtwin.helpers.assertions",
    "assert_reaches": "pytest_simtwin.helpers.assertions",
    "assert_robot_stopped": "pytest_simtwin.helpers.assertions",
    "assert_twin_matches": "pytest_simtwin.twin.assertions",
    "record_metric": "pytest_simtwin.helpers.assertions",
    "ValidationMetric": "pytest_simtwin.results.metrics",
    "MetricRecord": "pytest_simtwin.results.metrics",
    # outside pytest
    "SimPool": "pytest_simtwin.batch.pool",
    "PoolMember": "pytest_simtwin.batch.pool",
    "SimSession": "pytest_simtwin.runtime.session",
    "SimConfig": "pytest_simtwin.backends.base",
    "Backend": "pytest_simtwin.backends.base",
    # errors
    "SimTwinError": "pytest_simtwin.errors",
    "ConfigError": "pytest_simtwin.errors",
    "ModelError": "pytest_simtwin.errors",
    "DomainError": "pytest_simtwin.errors",
    "SimulatorError": "pytest_simtwin.errors",
    "SimulatorStartError": "pytest_simtwin.errors",
    "SimulatorDiedError": "pytest_simtwin.errors",
    "ControlError": "pytest_simtwin.errors",
    "WaitTimeout": "pytest_simtwin.errors",
    "BackendError": "pytest_simtwin.errors",
    "BaselineError": "pytest_simtwin.errors",
    "DataError": "pytest_simtwin.errors",
}

#: public name -> a module offered as an attribute (``from pytest_simtwin import faults``)
_MODULES: dict[str, str] = {"faults": "pytest_simtwin.control.faults"}

__all__ = [
    "Backend",
    "BackendError",
    "BaselineError",
    "ConfigError",
    "ControlError",
    "DataError",
    "DomainError",
    "Fault",
    "FaultHandle",
    "FaultInjector",
    "MetricRecord",
    "MetricRecorder",
    "ModelError",
    "NodeLauncher",
    "NodeProcess",
    "PoolMember",
    "Robot",
    "RosNodeHelper",
    "Sim",
    "SimConfig",
    "SimPool",
    "SimSession",
    "SimTwinError",
    "SimulatorDiedError",
    "SimulatorError",
    "SimulatorStartError",
    "TwinValidation",
    "ValidationMetric",
    "WaitTimeout",
    "__version__",
    "assert_metric",
    "assert_reaches",
    "assert_robot_stopped",
    "assert_twin_matches",
    "assert_within_tolerance",
    "faults",
    "record_metric",
]

if TYPE_CHECKING:  # what editors and mypy see; at run time __getattr__ imports on first use
    from pytest_simtwin.backends.base import Backend, SimConfig
    from pytest_simtwin.batch.pool import PoolMember, SimPool
    from pytest_simtwin.control import faults
    from pytest_simtwin.control.faults import Fault, FaultHandle, FaultInjector
    from pytest_simtwin.errors import (
        BackendError,
        BaselineError,
        ConfigError,
        ControlError,
        DataError,
        DomainError,
        ModelError,
        SimTwinError,
        SimulatorDiedError,
        SimulatorError,
        SimulatorStartError,
        WaitTimeout,
    )
    from pytest_simtwin.helpers.assertions import (
        MetricRecorder,
        assert_metric,
        assert_reaches,
        assert_robot_stopped,
        assert_within_tolerance,
        record_metric,
    )
    from pytest_simtwin.helpers.nodes import NodeLauncher, NodeProcess, RosNodeHelper
    from pytest_simtwin.helpers.robot import Robot
    from pytest_simtwin.results.metrics import MetricRecord, ValidationMetric
    from pytest_simtwin.runtime.session import SimSession
    from pytest_simtwin.runtime.sim import Sim
    from pytest_simtwin.twin.assertions import TwinValidation, assert_twin_matches


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        package: Any = importlib.import_module(_MODULES[name])
        globals()[name] = package
        return package
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'pytest_simtwin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once imported, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
