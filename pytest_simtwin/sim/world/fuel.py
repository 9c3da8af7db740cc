"""Gazebo Fuel URIs (``https://fuel.gazebosim.org/1.0/OWNER/models/NAME[/VERSION][/files/PATH]``), offline.

The well-known OpenRobotics "Ground Plane" maps to a built-in copy and "Sun" (a light) to nothing, so
the stock worlds of turtlebot3_gazebo and gz-sim load without a network; so do Gazebo classic's
``model://ground_plane`` and ``model://sun`` (installed with Gazebo) when no resource folder has them. Any other model comes from the
local Fuel cache exactly as ``gz fuel download`` lays it out (gz-fuel-tools ``ModelIdentifier``:
``<cache>/<server host>/<owner>/models/<name>/<version>/``, owner and name lowercased, cache root
``GZ_FUEL_CACHE_PATH`` or ``~/.gz/fuel``); a missing one is an error naming the download command.
"""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from pytest_simtwin.errors import ModelError
from pytest_simtwin.sim.world.xmltree import Element

DEFAULTS_MODELS = Path(__file__).resolve().parents[1] / "defaults" / "models"
#: (owner, name) lowercased -> built-in folder, or None for a model that simulates nothing (a light).
BUILTIN: dict[tuple[str, str], Path | None] = {
    ("openrobotics", "ground plane"): DEFAULTS_MODELS / "fuel_ground_plane",
    ("openrobotics", "sun"): None,
}

#: Models every Gazebo classic installation ships (``/usr/share/gazebo-11/models``), named by the stock
#: worlds as ``model://sun`` / ``model://ground_plane``: used when the resource path has no such folder.
CLASSIC_BUILTIN: dict[str, Path | None] = {"ground_plane": DEFAULTS_MODELS / "fuel_ground_plane", "sun": None}


@dataclass(frozen=True)
class FuelRef:
    url: str
    host: str
    owner: str
    kind: str  # models | worlds
    name: str
    version: str  # "" / "tip" = newest
    file: str  # path inside the model after /files/ ("" = the model folder)


def is_fuel(uri: str) -> bool:
    return uri.strip().lower().startswith(("http://", "https://"))


def parse(uri: str, element: Element) -> FuelRef:
    url = uri.strip()
    parsed = urllib.parse.urlsplit(url)
    parts = [urllib.parse.unquote(p) for p in parsed.path.split("/") if p]
    if parts and parts[0] == "1.0":  # API version of the Fuel server
        parts = parts[1:]
    if len(parts) < 3 or parts[1].lower() not in ("models", "worlds"):
        raise ModelError(
            f"{element.where}: <uri>{url}</uri> is not a Gazebo Fuel model URL; expected "
            "https://fuel.gazebosim.org/1.0/OWNER/models/NAME[/VERSION]."
        )
    owner, kind, name, rest = parts[0], parts[1].lower(), parts[2], parts[3:]
    version = ""
    if rest and (rest[0].isdigit() or rest[0] == "tip"):
        version, rest = rest[0], rest[1:]
    file = "/".join(rest[1:]) if rest and rest[0] == "files" else ""
    return FuelRef(url, parsed.hostname or "", owner, kind, name, version, file)


def cache_roots() -> list[Path]:
    """Fuel cache roots, as gz-fuel-tools (then ignition) chooses them."""
    roots = [Path(p) for var in ("GZ_FUEL_CACHE_PATH", "IGN_FUEL_CACHE_PATH") if (p := os.environ.get(var))]
    roots += [Path.home() / ".gz" / "fuel", Path.home() / ".ignition" / "fuel"]
    return list(dict.fromkeys(roots))


def _download_url(ref: FuelRef) -> str:
    return f"https://{ref.host}/1.0/{ref.owner}/{ref.kind}/{urllib.parse.quote(ref.name)}"


def resolve(uri: str, element: Element) -> Path | None:
    """Local folder (or file under ``/files/``) of a Fuel URI; None = nothing to simulate (a light)."""
    ref = parse(uri, element)
    key = (ref.owner.lower(), ref.name.lower())
    if ref.kind == "models" and key in BUILTIN and not ref.file:
        return BUILTIN[key]
    searched = []
    for root in cache_roots():
        folder = root / ref.host.lower() / ref.owner.lower() / ref.kind / ref.name.lower()
        searched.append(folder)
        if not folder.is_dir():
            continue
        versions = sorted((p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()), key=lambda p: int(p.name))
        chosen = folder / ref.version if ref.version.isdigit() else (versions[-1] if versions else None)
        if chosen is None or not chosen.is_dir():
            continue
        target = chosen / ref.file if ref.file else chosen
        if target.exists():
            return target
    listed = "\n".join(f"    {p}" for p in searched)
    raise ModelError(
        f"{element.where}: Gazebo Fuel {ref.kind[:-1]} {ref.url!r} is not in the local Fuel cache (no network is "
        f"used); looked in:\n{listed}\nExpected the layout of `gz fuel download`: run "
        f'`gz fuel download -u "{_download_url(ref)}"` once (set GZ_FUEL_CACHE_PATH to choose the cache '
        "folder), or replace the <uri> with a local model://NAME."
    )
