"""2D lidar by batch ray casting (``mujoco.mj_multiRay``) against collision geometry."""

from __future__ import annotations

import math
from array import array
from typing import Any

import numpy as np

from pytest_simtwin.sim.world.mjcf import ROBOT_GROUP, SITE_GROUP
from pytest_simtwin.sim.world.model import LidarSpec


class Lidar:
    """Casts ``spec.samples`` rays in the sensor's xy plane from a MuJoCo site.

    Ranges follow REP-117: no hit or beyond ``range_max`` -> +inf, closer than ``range_min`` -> -inf.
    Hits get gaussian noise (from the caller's seeded generator) and are clamped to the valid range.
    ``<range><resolution>`` is not applied: gz-sensors only reports it (``Lidar::RangeResolution``), so
    the iRobot Create 3's IR sensors (resolution 1.0 on a 0.2 m range) read their obstacles.
    """

    def __init__(self, spec: LidarSpec, site_id: int, own_group: int = ROBOT_GROUP) -> None:
        self.spec = spec
        self.site_id = site_id
        n = spec.samples
        angles = spec.min_angle + np.arange(n) * spec.angle_increment
        self._local = np.stack([np.cos(angles), np.sin(angles), np.zeros(n)], axis=1)
        self._dist = np.empty(n)
        self._geomid = np.empty(n, dtype=np.int32)
        # The robot's own geoms (its group) must not shadow its lidar; the world and other robots count.
        self._groups = np.array([0 if g in (own_group, SITE_GROUP) else 1 for g in range(6)], dtype=np.uint8)

    def scan(self, model: Any, data: Any, rng: np.random.Generator) -> array[float]:
        import mujoco

        spec = self.spec
        # mj_step leaves site poses at the start of the step; refresh them for this instant.
        mujoco.mj_kinematics(model, data)
        rot = data.site_xmat[self.site_id].reshape(3, 3)
        origin = np.array(data.site_xpos[self.site_id])
        vec = np.ascontiguousarray(self._local @ rot.T).reshape(-1)
        n = spec.samples
        # cutoff only culls bounding volumes; the clamp below enforces range_max exactly.
        mujoco.mj_multiRay(
            model, data, origin, vec, self._groups, 1, -1, self._geomid, self._dist, None, n, spec.range_max * 1.01
        )
        true = self._dist
        noise = rng.normal(spec.noise_mean, spec.noise_stddev, n) if spec.noise_stddev > 0 else spec.noise_mean
        ranges = np.clip(true + noise, spec.range_min, spec.range_max)
        ranges[(true < 0) | (true > spec.range_max)] = math.inf
        ranges[(true >= 0) & (true < spec.range_min)] = -math.inf
        out = array("f")
        out.frombytes(ranges.astype(np.float32).tobytes())
        return out
