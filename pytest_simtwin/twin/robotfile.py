"""Where a calibrated twin goes: the overrides YAML and the robot SDF (its ``simtwin::TwinModel`` plugin).

The simulator reads both (sim/engine/twin_model.py); ``nominal_from_sdf`` reads what the robot's
DiffDrive plugin is configured with.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.twin.model import TWIN_FIELDS, DiffDriveParams

if TYPE_CHECKING:
    from pytest_simtwin.twin.calibrate import CalibrationResult


def write_overrides(result: CalibrationResult, path: Path, source: str = "") -> Path:
    import yaml

    doc = result.overrides()
    if source:
        doc["calibration"]["data"] = source
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# written by `simtwin calibrate`\n" + yaml.safe_dump(doc, sort_keys=False))
    return path


def read_overrides(path: Path, nominal: DiffDriveParams | None = None) -> DiffDriveParams:
    """The model parameters of an overrides file (the inverse of :func:`write_overrides`)."""
    import yaml

    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
        robot = doc["robot"]
        dd = dict(robot.get("diff_drive") or {})
        twin = dict(robot.get("twin") or {})
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(
            f"{path}: expected a simtwin overrides YAML with robot.diff_drive and robot.twin ({exc}); "
            "write one with `simtwin calibrate --out`"
        ) from None
    known = set(DiffDriveParams.__dataclass_fields__)
    values = {k: float(v) for k, v in {**dd, **twin}.items() if k in known and v is not None}
    return (nominal or DiffDriveParams()).with_(**values)


# -- SDF -------------------------------------------------------------------------------------------
_DD_TAGS = {
    "max_linear_acceleration": ("max_linear_acceleration", "max_acceleration"),
    "max_angular_acceleration": ("max_angular_acceleration",),
}


def nominal_from_sdf(path: Path) -> DiffDriveParams:
    """Wheel radius, separation and limits from the DiffDrive plugin of an SDF robot."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read the robot SDF ({exc})") from None
    plugin = next(
        (p for p in root.iter("plugin") if "diff" in (p.get("filename", "") + p.get("name", "")).lower()), None
    )
    if plugin is None:
        raise ConfigError(f"{path}: no DiffDrive <plugin> found; pass --wheel-radius and --wheel-separation instead")

    def num(tag: str) -> float | None:
        el = plugin.find(tag)
        return float(el.text) if el is not None and el.text else None

    values: dict[str, float] = {}
    for key in ("wheel_radius", "wheel_separation", "max_linear_velocity", "max_angular_velocity"):
        v = num(key)
        if v is not None:
            values[key] = v
    for key, tags in _DD_TAGS.items():
        for tag in tags:
            v = num(tag)
            if v is not None:
                values[key] = v
                break
    if "wheel_radius" not in values or "wheel_separation" not in values:
        raise ConfigError(f"{path}: the DiffDrive plugin lacks <wheel_radius> or <wheel_separation>")
    return DiffDriveParams(**values)


def twin_from_sdf(path: Path, nominal: DiffDriveParams) -> DiffDriveParams:
    """``nominal`` with the values of the robot's ``simtwin::TwinModel`` plugin, if it has one."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(f"{path}: cannot read the robot SDF ({exc})") from None
    plugin = next((p for p in root.iter("plugin") if p.get("name") == "simtwin::TwinModel"), None)
    if plugin is None:
        return nominal
    values: dict[str, float] = {}
    for key in ("wheel_radius", "wheel_separation", *TWIN_FIELDS):
        el = plugin.find(key)
        if el is not None and el.text:
            try:
                values[key] = float(el.text)
            except ValueError:
                raise ConfigError(f"{path}: simtwin::TwinModel <{key}> must be a number, found {el.text!r}") from None
    return nominal.with_(**values)


TWIN_PLUGIN = '<plugin filename="simtwin-twin-model" name="simtwin::TwinModel">'


def twin_plugin_xml(params: DiffDriveParams, indent: str = "    ") -> str:
    """The ``simtwin::TwinModel`` plugin element the simulator reads (sim/engine/twin_model.py)."""
    keys = ("wheel_radius", "wheel_separation", *TWIN_FIELDS)
    body = "".join(
        f"{indent}  <{k}>{getattr(params, k):.6g}</{k}>\n" for k in keys if math.isfinite(getattr(params, k))
    )
    return f"{indent}{TWIN_PLUGIN}\n{body}{indent}</plugin>\n"


def write_sdf_copy(src: Path, dst: Path, result: CalibrationResult) -> Path:
    """A copy of the robot SDF carrying the calibrated twin: fitted acceleration limits in the DiffDrive
    plugin, and a ``simtwin::TwinModel`` plugin with the delay, lags, gains and the effective wheel
    radius and separation (the DiffDrive keeps its configured ones). Text edits keep the file's layout.
    """
    text = Path(src).read_text()
    fitted = result.fitted
    for key, tags in _DD_TAGS.items():
        if key in result.fitted_names:
            for tag in tags:
                text = re.sub(rf"<{tag}>\s*[^<]*</{tag}>", f"<{tag}>{getattr(fitted, key):.6g}</{tag}>", text)
    # an earlier calibration's twin plugin is replaced, not stacked
    text = re.sub(r"[ \t]*<plugin[^>]*simtwin::TwinModel[^>]*>.*?</plugin>\s*\n?", "", text, flags=re.S)
    match = re.search(
        r"^([ \t]*)<plugin[^>]*(?:diff[-_]drive|DiffDrive)[^>]*>.*?</plugin>[ \t]*\n", text, re.S | re.M | re.I
    )
    if match is None:
        raise ConfigError(f"{src}: no DiffDrive <plugin> to put the twin model beside")
    text = text[: match.end()] + twin_plugin_xml(fitted, match.group(1)) + text[match.end() :]
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(text)
    return dst
