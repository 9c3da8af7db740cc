"""Resolve ``model://``, ``package://``, ``file://`` and relative URIs the way Gazebo and ROS do."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world import fuel
from pytest_simtwin.sim.world.defaults import DEFAULT_ROBOT, DEFAULT_WORLD, DEFAULTS_DIR
from pytest_simtwin.sim.world.meshes import MESH_SUFFIXES
from pytest_simtwin.sim.world.xmltree import Element, parse_file

__all__ = ["DEFAULTS_DIR", "DEFAULT_ROBOT", "DEFAULT_WORLD", "Resolver", "check_mesh"]

#: Environment variables Gazebo (and classic Gazebo / libsdformat) search for ``model://`` URIs.
RESOURCE_ENV = ("GZ_SIM_RESOURCE_PATH", "IGN_GAZEBO_RESOURCE_PATH", "SDF_PATH", "GAZEBO_MODEL_PATH")


@dataclass
class Resolver:
    """Search path for ``model://NAME``: the resource environment variables, then extra folders."""

    extra: list[Path] = field(default_factory=list)

    def search_path(self) -> list[Path]:
        paths: list[Path] = []
        for var in RESOURCE_ENV:
            for part in os.environ.get(var, "").split(os.pathsep):
                if part:
                    paths.append(Path(part))
        paths.extend(self.extra)
        paths.append(DEFAULTS_DIR / "models")
        unique: list[Path] = []
        for p in paths:
            if p not in unique:
                unique.append(p)
        return unique

    def resolve(self, uri: str, base: Path | None, element: Element) -> Path:
        """Turn a URI into an existing path; ``base`` is the folder of the file that names it."""
        uri = uri.strip()
        if fuel.is_fuel(uri):
            found = fuel.resolve(uri, element)
            if found is None:
                raise ModelError(f"{element.where}: <uri>{uri}</uri> is a light, not a model or mesh; remove it here.")
            return found
        if uri.startswith("model://"):
            rest = uri[len("model://") :]
            found = self.find_model(uri)
            if found is not None:
                return found
            searched = self.search_path()
            listed = "\n".join(f"    {p}" for p in searched) or "    (none)"
            raise ModelError(
                f"{element.where}: cannot resolve <uri>{uri}</uri>; expected a folder {rest.split('/')[0]!r} "
                f"(with model.config or model.sdf) in one of the searched paths:\n{listed}\n"
                "Add the folder that contains it to GZ_SIM_RESOURCE_PATH (colon-separated)."
            )
        if uri.startswith("package://"):
            return self._package(uri, base, element)
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        path = Path(uri)
        if not path.is_absolute() and base is not None:
            path = base / path
        if not path.exists():
            raise ModelError(f"{element.where}: {uri!r} does not exist (looked for {path}); fix the path or URI.")
        return path

    def find_model(self, uri: str) -> Path | None:
        """The path of a ``model://NAME[/...]`` URI in the search path, None when no folder has it."""
        rest = uri.strip()[len("model://") :]
        for root in self.search_path():
            candidate = root / rest
            if candidate.exists():
                return candidate
        return None

    def _package(self, uri: str, base: Path | None, element: Element) -> Path:
        package, _, rest = uri[len("package://") :].partition("/")
        roots: list[Path] = []
        for var in ("AMENT_PREFIX_PATH", "COLCON_PREFIX_PATH"):
            for part in os.environ.get(var, "").split(os.pathsep):
                if part:
                    roots.append(Path(part) / "share")
        for part in os.environ.get("ROS_PACKAGE_PATH", "").split(os.pathsep):
            if part:
                roots.append(Path(part))
        # A source checkout without an install space: a folder named like the package above the file.
        if base is not None:
            roots.extend(base.parents)
            roots.insert(0, base)
        roots.extend(self.search_path())
        for root in roots:
            candidate = root / package / rest
            if candidate.exists():
                return candidate
            if root.name == package and (root / rest).exists():
                return root / rest
        raise ModelError(
            f"{element.where}: cannot resolve {uri!r}; expected package {package!r} under AMENT_PREFIX_PATH "
            "(share/<package>), ROS_PACKAGE_PATH, GZ_SIM_RESOURCE_PATH or a parent folder of the file. "
            "Source your workspace or add the package's parent folder to GZ_SIM_RESOURCE_PATH."
        )

    def model_file(self, folder: Path, element: Element) -> Path:
        """The SDF file of a model folder: model.config's ``<sdf>`` (highest version), else model.sdf."""
        if folder.is_file():
            return folder
        config = folder / "model.config"
        if config.exists():
            root = parse_file(config)
            best: tuple[tuple[int, ...], str] | None = None
            for sdf in root.findall("sdf"):
                version = tuple(int(v) for v in sdf.attrib.get("version", "0").split(".") if v.isdigit())
                if sdf.text and (best is None or version > best[0]):
                    best = (version, sdf.text)
            if best is not None:
                path = folder / best[1]
                if not path.exists():
                    raise ModelError(f"{config}: <sdf> names {best[1]!r} but {path} does not exist; fix model.config.")
                return path
        if (folder / "model.sdf").exists():
            return folder / "model.sdf"
        raise ModelError(
            f"{element.where}: model folder {folder} has neither model.config with an <sdf> element nor "
            "model.sdf; expected a Gazebo model folder."
        )


def check_mesh(path: Path, element: Element) -> Path:
    """A mesh file of a format the mesh loader reads (see :mod:`meshes`), and that exists."""
    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise ModelError(
            f"{element.where}: mesh {path.name} is {suffix or 'of unknown type'}; expected one of "
            f"{', '.join(MESH_SUFFIXES)}. Convert it, e.g. `assimp export {path.name} {path.stem}.obj` (assimp-utils) "
            "or with Blender/MeshLab, and point the <uri> at the new file."
        )
    if not path.is_file():
        raise ModelError(f"{element.where}: mesh file {path} does not exist; fix the <uri>/filename.")
    return path
