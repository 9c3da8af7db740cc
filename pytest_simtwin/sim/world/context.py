"""What loading one world carries from file to file: its name, the warnings said, the URI resolver."""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_simtwin.sim.world.resources import Resolver
from pytest_simtwin.sim.world.xmltree import Element


@dataclass
class Context:
    world: str = "default"
    warnings: list[str] = field(default_factory=list)
    resolver: Resolver = field(default_factory=Resolver)
    #: models that carry a ros2_control plugin instead of DiffDrive: name -> file:line
    ros2_control: dict[str, str] = field(default_factory=dict)
    #: the URDF's <ros2_control> blocks, read with its ros2_control plugin
    ros2_control_blocks: list[Element] = field(default_factory=list)

    #: drive plugins that are not differential drives: model name -> the "not yet" message of the first
    other_drives: dict[str, str] = field(default_factory=dict)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
