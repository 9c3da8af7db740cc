"""Mesh files (STL ascii/binary, OBJ) as vertex clouds, split into connected parts.

MuJoCo collides (and ray-casts) a mesh as its convex hull. A static room or shelf mesh is usually
made of separate closed parts (walls, boards); one hull over all of them would fill the room, so
static meshes are split into connected components and each part gets its own hull.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from pytest_simtwin.errors import ModelError

#: More parts than this: one hull for the whole mesh (ray cost grows with the geom count).
MAX_PARTS = 256
#: Parts thinner than this are thickened so the hull has a volume (a floor made of two triangles).
MIN_THICKNESS = 1e-3


def load_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(vertices (N, 3) float, faces (M, 3) int) of an STL or OBJ file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read mesh {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".obj":
            return _obj(data.decode(errors="replace"))
        return _stl(data)
    except (ValueError, IndexError) as exc:
        raise ModelError(f"mesh {path} is not a valid {path.suffix[1:].upper()} file ({exc}); re-export it.") from None


def _stl(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    if len(data) >= 84 and 84 + 50 * int.from_bytes(data[80:84], "little") == len(data):
        count = int.from_bytes(data[80:84], "little")
        record = np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
        corners = np.frombuffer(data, dtype=record, count=count, offset=84)["v"].reshape(-1, 3).astype(float)
    else:
        values = [
            line.split()[1:4]
            for line in data.decode(errors="replace").splitlines()
            if line.strip().startswith("vertex")
        ]
        corners = np.array(values, dtype=float).reshape(-1, 3)
    if len(corners) == 0 or len(corners) % 3:
        raise ValueError("no triangles")
    # STL repeats corners per triangle: merge equal coordinates to recover connectivity.
    vertices, inverse = np.unique(np.round(corners, 9), axis=0, return_inverse=True)
    return vertices, inverse.reshape(-1, 3)


def _obj(text: str) -> tuple[np.ndarray, np.ndarray]:
    vertices: list[list[float]] = []
    faces: list[list[int]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "v":
            vertices.append([float(v) for v in parts[1:4]])
        elif parts[0] == "f":
            idx = [int(p.split("/")[0]) for p in parts[1:]]
            idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
            faces.extend([idx[0], idx[k], idx[k + 1]] for k in range(1, len(idx) - 1))
    if not vertices or not faces:
        raise ValueError("no vertices or faces")
    return np.array(vertices, dtype=float), np.array(faces, dtype=int)


def connected_parts(vertices: np.ndarray, faces: np.ndarray) -> list[np.ndarray]:
    """Vertex clouds of the mesh's connected components (shared vertices connect triangles)."""
    parent = np.arange(len(vertices))

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return root

    for a, b, c in faces.tolist():
        ra, rb, rc = find(a), find(b), find(c)
        parent[rb] = ra
        parent[find(rc)] = ra
    used = np.unique(faces)
    roots = np.array([find(int(i)) for i in used])
    return [_solid(vertices[used[roots == r]]) for r in np.unique(roots)]


def _solid(points: np.ndarray) -> np.ndarray:
    """Thicken flat or degenerate parts so MuJoCo can build a hull with a volume."""
    centre = points.mean(axis=0)
    _, sv, axes = np.linalg.svd(points - centre, full_matrices=True)
    sv = np.concatenate([sv, np.zeros(3 - len(sv))])
    if len(points) >= 4 and sv[2] / len(points) ** 0.5 > 1e-6:  # RMS extent along the thinnest axis
        return points
    offset = axes[2] * MIN_THICKNESS / 2
    extra = [points + offset, points - offset]
    if sv[1] <= 1e-12:  # a line or a point: widen in the second direction too
        extra += [points + axes[1] * MIN_THICKNESS / 2, points - axes[1] * MIN_THICKNESS / 2]
    return np.concatenate(extra)


@functools.lru_cache(maxsize=64)
def mesh_parts(path: Path, split: bool) -> tuple[np.ndarray, ...]:
    """Vertex clouds to build hulls from: one per connected part (``split``) or one for the whole mesh."""
    vertices, faces = load_mesh(path)
    if split:
        parts = connected_parts(vertices, faces)
        if 1 < len(parts) <= MAX_PARTS:
            return tuple(parts)
    return (_solid(vertices[np.unique(faces)]),)
