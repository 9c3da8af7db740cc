"""Mesh files (STL, OBJ, COLLADA .dae, glTF/GLB, PLY) -> vertex clouds of convex parts, cached by content.

Loading goes through trimesh (pycollada for COLLADA). MuJoCo collides (and ray-casts) a mesh as its
convex hull, so only hull vertices are kept: a 100k-vertex shell becomes a few hundred points in
bounded time and memory (qhull is O(n log n); nothing here builds an N x N matrix). A static room or
shelf mesh is usually made of separate closed parts (walls, boards); one hull over all of them would
fill the room, so static meshes are split into connected components and each part gets its own hull;
a closed concave part (a ring of walls in one piece) is split further into convex pieces by CoACD.

Units: COLLADA ``<unit meter="...">`` scales the vertices as gz-common's ColladaLoader does; like
Gazebo, ``<up_axis>`` is not applied. The SDF/URDF ``<scale>`` is applied later by MuJoCo.

Processed parts are cached between runs in ``$XDG_CACHE_HOME/pytest-simtwin/meshes`` (default
``~/.cache/...``; ``SIMTWIN_MESH_CACHE`` overrides it, empty disables it), keyed by the file's content hash.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from pytest_simtwin.errors import ModelError

#: More parts than this: one hull for the whole mesh (ray cost grows with the geom count).
MAX_PARTS = 256
#: Parts thinner than this are thickened so the hull has a volume (a floor made of two triangles).
MIN_THICKNESS = 1e-3
#: Formats trimesh reads here (COLLADA through pycollada).
MESH_SUFFIXES = (".stl", ".obj", ".dae", ".glb", ".gltf", ".ply", ".off")
#: A closed static part whose hull is this many times its volume is decomposed into convex pieces.
CONCAVE_RATIO = 1.5
#: Hull input and output caps (see _thin): bounded qhull time and MJCF size for 100k-vertex meshes.
MAX_HULL_INPUT = 20000
MAX_HULL_POINTS = 1000
MAX_DECOMPOSE_FACES = 2000  # bounded time: larger concave parts (a 2k-face bin: 9 s) stay one hull
#: Bumped when the processing below changes, so stale cache entries are not reused.
CACHE_VERSION = "7"


def cache_dir() -> Path | None:
    """Where processed meshes are kept (None: caching disabled)."""
    override = os.environ.get("SIMTWIN_MESH_CACHE")
    if override is not None:
        return Path(override) if override else None
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pytest-simtwin" / "meshes"


def _unit_meter(path: Path, scene: Any) -> float:
    """COLLADA ``<unit meter>`` as pycollada reports it through trimesh's scene units ("0.0254 * meters")."""
    if path.suffix.lower() != ".dae":
        return 1.0
    units = str(getattr(scene, "units", None) or "meters")
    match = re.match(r"\s*([0-9.eE+-]+)\s*\*", units)
    return float(match.group(1)) if match else 1.0


def _load_raw(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (metres) and faces as trimesh reads them: STL corners are not merged yet."""
    import trimesh  # heavy (~0.3 s): only worlds with meshes pay for it

    suffix = path.suffix.lower()
    if suffix not in MESH_SUFFIXES:
        raise ModelError(
            f"mesh {path} is {suffix or 'of unknown type'}; expected one of {', '.join(MESH_SUFFIXES)}. Convert it "
            f"(e.g. `assimp export {path.name} {path.stem}.obj`) and point the <uri> at the new file."
        )
    try:
        scene = trimesh.load_scene(str(path), process=False)
    except OSError as exc:
        raise ModelError(f"cannot read mesh {path}: {exc.strerror or exc}") from None
    except Exception as exc:  # trimesh/pycollada raise many kinds (ValueError, DaeError, KeyError, ...)
        raise ModelError(
            f"mesh {path} is not a valid {suffix[1:].upper()} file ({type(exc).__name__}: {exc}); re-export it."
        ) from None
    meshes: list[Any] = [g for g in scene.dump() if hasattr(g, "faces") and len(g.faces)]
    if not meshes:
        raise ModelError(
            f"mesh {path} is not a valid {suffix[1:].upper()} file (no triangles); expected a surface mesh, re-export it."
        )
    vertices, faces, offset = [], [], 0
    for mesh in meshes:
        vertices.append(np.asarray(mesh.vertices, dtype=float))
        faces.append(np.asarray(mesh.faces, dtype=np.int64) + offset)
        offset += len(mesh.vertices)
    return np.concatenate(vertices) * _unit_meter(path, scene), np.concatenate(faces)


def load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) float in metres, faces (M, 3) int) of a mesh file, scene transforms applied,
    equal vertices merged (STL repeats corners per triangle) so that faces show the connectivity."""
    from trimesh.grouping import unique_rows  # hashing, faster than np.unique(axis=0) on 1M corners

    raw, faces = _load_raw(path)
    first, inverse = unique_rows(raw, digits=9)  # type: ignore[no-untyped-call]
    return raw[first], np.asarray(inverse, dtype=np.int64).reshape(-1)[faces]


def components(vertices: np.ndarray, faces: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(vertices, faces) of each connected component (shared vertices connect triangles)."""
    from scipy.sparse import coo_matrix  # scipy comes with trimesh's dependencies; heavy import
    from scipy.sparse.csgraph import connected_components

    n = len(vertices)
    rows = np.concatenate([faces[:, 0], faces[:, 1]])
    cols = np.concatenate([faces[:, 1], faces[:, 2]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    out = []
    face_labels = labels[faces[:, 0]]
    for label in np.unique(face_labels):
        sub = faces[face_labels == label]
        used, inverse = np.unique(sub, return_inverse=True)
        out.append((vertices[used], inverse.reshape(-1, 3)))
    return out


def connected_parts(vertices: np.ndarray, faces: np.ndarray) -> list[np.ndarray]:
    """Hull vertex clouds of the mesh's connected components."""
    return [_hull_points(v) for v, _ in components(vertices, faces)]


def _convex_pieces(vertices: np.ndarray, faces: np.ndarray) -> list[np.ndarray]:
    """A concave closed part (a ring of walls: its hull would fill the room) split into convex pieces by
    CoACD; any other part is its own hull. Bounded: only closed parts up to MAX_DECOMPOSE_FACES faces."""
    import trimesh  # heavy; see load_mesh

    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if len(faces) > MAX_DECOMPOSE_FACES or len(faces) < 8 or not mesh.is_watertight:
        return [_hull_points(vertices)]
    try:
        volume, hull_volume = abs(float(mesh.volume)), float(mesh.convex_hull.volume)
    except Exception:  # qhull on a degenerate part
        return [_hull_points(vertices)]
    if volume <= 0 or hull_volume <= CONCAVE_RATIO * volume:
        return [_hull_points(vertices)]
    import coacd  # heavy native module: only concave static meshes need it

    coacd.set_log_level("error")
    # coarse settings (defaults: 150 MCTS iterations, depth 3, resolution 2000): ~0.5 s for a ring of walls,
    # ~3 s for a 1.5k-face table, once (then cached); concavity 0.1 keeps a robot-sized gap open
    pieces = coacd.run_coacd(
        coacd.Mesh(vertices, faces), threshold=0.1, max_convex_hull=16, mcts_iterations=20, mcts_max_depth=2,
        mcts_nodes=10, resolution=500, preprocess_resolution=30, seed=0,
    )  # fmt: skip
    return [_hull_points(np.asarray(v, dtype=float)) for v, _ in pieces] or [_hull_points(vertices)]


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The convex hull's vertices of ``points``; flat or degenerate sets are thickened first."""
    from scipy.spatial import ConvexHull, QhullError

    points = _solid(_thin(points, MAX_HULL_INPUT))
    if len(points) <= 8:
        return points
    try:
        hull = ConvexHull(points)
    except QhullError:
        return points
    return _thin(np.asarray(points[hull.vertices]), MAX_HULL_POINTS)


def _thin(points: np.ndarray, limit: int) -> np.ndarray:
    """At most ``limit`` points: an even stride through them plus the six axis extremes (so the bounding
    box stays exact). Dense scanned or CAD shells (a 160k-vertex round top: every vertex on the hull, qhull
    5 s) lose under a millimetre this way; the stride keeps time and memory linear."""
    if len(points) <= limit:
        return points
    step = int(np.ceil(len(points) / (limit - 6)))
    extremes = np.concatenate([points.argmin(axis=0), points.argmax(axis=0)])
    keep = np.unique(np.concatenate([np.arange(0, len(points), step), extremes]))
    return np.asarray(points[keep])


def _solid(points: np.ndarray) -> np.ndarray:
    """Thicken flat or degenerate parts so MuJoCo can build a hull with a volume."""
    centre = points.mean(axis=0)
    # compact SVD: (N, 3) in, 3 singular values out; never the N x N factor
    _, sv, axes = np.linalg.svd(points - centre, full_matrices=False)
    sv = np.concatenate([sv, np.zeros(3 - len(sv))])
    if len(axes) < 3:
        axes = np.vstack([axes, np.eye(3)])[:3]
    if len(points) >= 4 and sv[2] / len(points) ** 0.5 > 1e-6:  # RMS extent along the thinnest axis
        return points
    offset = axes[2] * MIN_THICKNESS / 2
    extra = [points + offset, points - offset]
    if sv[1] <= 1e-12:  # a line or a point: widen in the second direction too
        extra += [points + axes[1] * MIN_THICKNESS / 2, points - axes[1] * MIN_THICKNESS / 2]
    return np.concatenate(extra)


def _process(path: Path, split: bool) -> tuple[np.ndarray, ...]:
    if not split:  # one hull: no connectivity needed, so no vertex merging
        raw, faces = _load_raw(path)
        return (_hull_points(raw[np.unique(faces)]),)
    vertices, faces = load_mesh(path)
    if split:
        pieces = components(vertices, faces)
        if len(pieces) <= MAX_PARTS:
            parts = [p for v, f in pieces for p in _convex_pieces(v, f)]
            if 1 < len(parts) <= MAX_PARTS:
                return tuple(parts)
    return (_hull_points(vertices[np.unique(faces)]),)


def _read_cache(file: Path) -> tuple[np.ndarray, ...] | None:
    try:
        with np.load(file) as data:
            return tuple(data[f"arr_{i}"] for i in range(len(data.files)))
    except (OSError, ValueError, KeyError):
        return None


def _write_cache(file: Path, parts: tuple[np.ndarray, ...]) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        # write then rename: parallel workers never read a half-written file
        with tempfile.NamedTemporaryFile(dir=file.parent, suffix=".tmp", delete=False) as tmp:
            np.savez(tmp, *parts)
        os.replace(tmp.name, file)
    except OSError:
        pass  # a read-only cache only costs time


@functools.lru_cache(maxsize=128)
def mesh_parts(path: Path, split: bool) -> tuple[np.ndarray, ...]:
    """Vertex clouds to build hulls from: one per connected part (``split``) or one for the whole mesh."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read mesh {path}: {exc.strerror}") from None
    folder = cache_dir()
    key = hashlib.sha256(content + f"|{path.suffix.lower()}|{split}|{CACHE_VERSION}".encode()).hexdigest()
    file = folder / f"{key}.npz" if folder is not None else None
    if file is not None and file.exists():
        cached = _read_cache(file)
        if cached:
            return cached
    parts = _process(path, split)
    if file is not None:
        _write_cache(file, parts)
    return parts
