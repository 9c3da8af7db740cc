"""File names shared by every artifact: the one node-id -> file-name rule."""

from __future__ import annotations

import hashlib
import re


def nodeid_filename(nodeid: str) -> str:
    """A safe, readable, collision-free file name (no extension) for a pytest node id.

    ``tests/test_nav.py::test_stop[0.5]`` -> ``tests-test_nav.py--test_stop-0.5-<hash8>``; the hash of the
    full id keeps two ids that sanitise alike apart. Baselines, bundles, bags and per-test folders use it.
    """
    readable = nodeid.replace("::", "--").replace("/", "-").replace("\\", "-")
    readable = re.sub(r"[^A-Za-z0-9._=+-]+", "-", readable).strip("-.")[:120] or "test"
    digest = hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"
