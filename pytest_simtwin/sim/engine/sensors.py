"""Readings of IMU, camera, depth camera, navsat and contact sensors from the MuJoCo state.

IMUs read MuJoCo's own gyro / accelerometer / framequat sensors on the sensor's site (computed inside
``mj_step``, so the accelerometer includes gravity exactly as a real one: +9.81 m/s^2 up at rest), with
gz-sensors' GaussianNoiseModel on top. Cameras render the collision shapes offscreen with
``mujoco.Renderer`` (EGL on a CPU-only machine through Mesa, a GPU when EGL finds one).
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from pytest_simtwin.errors import SimulatorError
from pytest_simtwin.sim.world.mjcf import ROBOT_GROUP, device_site
from pytest_simtwin.sim.world.sensors import NoiseSpec, SensorSpec

#: The Debian packages that give MuJoCo a headless OpenGL (EGL through Mesa, CPU or GPU).
RENDER_PACKAGES = "libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1"
_GL_LIBRARIES = {"egl": ("libEGL.so.1", "libOpenGL.so.0"), "osmesa": ("libOSMesa.so.8", "libOSMesa.so.6")}
#: WGS84 ellipsoid (gz::math::SphericalCoordinates)
_WGS84_A, _WGS84_F = 6378137.0, 1.0 / 298.257223563


def gl_problem(backend: str) -> str | None:
    """Why MuJoCo cannot render with ``backend`` here (None: the libraries load)."""
    names = _GL_LIBRARIES.get(backend)
    if names is None:
        return None if backend in ("glfw", "glx") else f"MUJOCO_GL={backend} cannot render offscreen"
    errors = []
    for name in names:
        try:
            ctypes.CDLL(name)
            if backend == "osmesa":
                return None  # one of the two sonames is enough
        except OSError as exc:
            errors.append(str(exc))
    if backend == "egl" and not errors:
        return None
    return "; ".join(errors)


def render_error(detail: str) -> str:
    backend = os.environ.get("MUJOCO_GL", "egl")
    return (
        f"cameras are not rendered: MuJoCo cannot create an offscreen OpenGL context (MUJOCO_GL={backend}: {detail}). "
        f"Expected headless EGL; install the Debian packages {RENDER_PACKAGES} (apt-get install -y {RENDER_PACKAGES}) "
        "or start the simulator with the cameras off (--no-sensor camera). The rest of the simulator keeps running."
    )


def _ensure_gl_context() -> None:
    """Give MuJoCo's renderer the GL backend MUJOCO_GL asks for when MuJoCo was imported with rendering
    off (the fork server preloads it so, and forks simulators from it)."""
    from mujoco.rendering.classic import gl_context

    current = getattr(gl_context, "GLContext", None)
    if current is not None and getattr(current, "__name__", "") != "_MissingGLContext":
        return
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        raise RuntimeError(f"MUJOCO_GL={backend} gives no offscreen context")
    gl_context.GLContext = GLContext


class Noise:
    """gz-sensors GaussianNoiseModel: a bias drawn once (N(bias_mean, bias_stddev), sign flipped with
    probability 1/2), white noise N(mean, stddev) per sample, an optional Gauss-Markov dynamic bias and
    quantisation to ``precision`` (gaussian_quantized)."""

    def __init__(self, spec: NoiseSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.active = spec.active
        bias = rng.normal(spec.bias_mean, spec.bias_stddev) if spec.bias_stddev > 0 else spec.bias_mean
        self.bias = -bias if rng.uniform() < 0.5 else bias
        if not self.active:
            self.bias = 0.0

    def apply(self, value: float, dt: float) -> float:
        if not self.active:
            return value
        s = self.spec
        white = self.rng.normal(s.mean, s.stddev) if s.stddev > 0 else s.mean
        if s.dynamic_bias_stddev > 0 and s.dynamic_bias_correlation_time > 0 and dt > 0:
            tau = s.dynamic_bias_correlation_time
            sigma = math.sqrt(-(s.dynamic_bias_stddev**2) * tau / 2 * math.expm1(-2 * dt / tau))
            self.bias = math.exp(-dt / tau) * self.bias + self.rng.normal(0.0, sigma)
        out = value + self.bias + white
        if s.precision > 0:
            out = round(out / s.precision) * s.precision
        return float(out)


class Imu:
    """One IMU: (orientation x, y, z, w in the world frame, angular velocity, linear acceleration) in its frame."""

    def __init__(self, spec: SensorSpec, rng: np.random.Generator) -> None:
        self.spec = spec
        self.rng = rng
        self.gyro = [Noise(n, rng) for n in spec.gyro_noise]
        self.accel = [Noise(n, rng) for n in spec.accel_noise]
        self._adr: tuple[int, int, int] | None = None
        self._model: Any = None
        self._last_t: float | None = None
        self._q0: tuple[float, float, float, float] | None = None

    def read(self, model: Any, data: Any, t: float) -> tuple[tuple[float, ...], list[float], list[float]]:
        if model is not self._model:  # recompiled (spawn/remove): sensor addresses may move
            site = device_site(self.spec.model, self.spec.link, self.spec.name)
            self._adr = tuple(int(model.sensor(f"{site}::{k}").adr[0]) for k in ("gyro", "acc", "quat"))  # type: ignore[assignment]
            self._model = model
        assert self._adr is not None
        g, a, q = self._adr
        s = data.sensordata
        dt = 0.0 if self._last_t is None else t - self._last_t
        self._last_t = t
        gyro = [n.apply(float(s[g + i]), dt) for i, n in enumerate(self.gyro)]
        acc = [n.apply(float(s[a + i]), dt) for i, n in enumerate(self.accel)]
        w, x, y, z = (float(v) for v in s[q : q + 4])
        if self.spec.relative_orientation:  # gazebo_ros: relative to the orientation at the first reading
            if self._q0 is None:
                self._q0 = (w, -x, -y, -z)  # the inverse of a unit quaternion
            a0, b0, c0, d0 = self._q0
            w, x, y, z = (a0 * w - b0 * x - c0 * y - d0 * z, a0 * x + b0 * w + c0 * z - d0 * y,
                          a0 * y - b0 * z + c0 * w + d0 * x, a0 * z + b0 * y - c0 * x + d0 * w)  # fmt: skip
        return (x, y, z, w), gyro, acc  # ROS order


class Cameras:
    """Offscreen rendering of the camera sensors: one ``mujoco.Renderer`` per image size, made on first
    use in the calling thread (an OpenGL context belongs to the thread that made it)."""

    def __init__(self, seed: int) -> None:
        self._renderers: dict[tuple[int, int], Any] = {}
        self._model: Any = None
        self._option: Any = None
        self.error: str | None = None
        self.rng = np.random.default_rng([seed, 0xCA])

    def _renderer(self, model: Any, width: int, height: int) -> Any:
        import mujoco  # already loaded by Physics; here only for the Renderer class

        if model is not self._model:  # a recompiled model needs new GPU buffers
            self.close()
            self._model = model
            # Brighter, shadowless, matte: colours close to the material's (Gazebo's default scene is lit).
            model.vis.headlight.ambient[:] = (0.5, 0.5, 0.5)
            model.vis.headlight.diffuse[:] = (0.5, 0.5, 0.5)
            model.vis.headlight.specular[:] = (0.0, 0.0, 0.0)
            model.vis.quality.offsamples = 0
            self._option = mujoco.MjvOption()
            self._option.geomgroup[ROBOT_GROUP] = 1  # cameras see the robot's own body, as in Gazebo
        key = (width, height)
        if key not in self._renderers:
            model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
            model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
            try:
                _ensure_gl_context()
                self._renderers[key] = mujoco.Renderer(model, height, width)
            except Exception as exc:  # no EGL display/device, missing Mesa driver, ...
                self.error = render_error(f"{type(exc).__name__}: {exc}")
                raise SimulatorError(self.error) from None
        return self._renderers[key]

    def render(self, spec: SensorSpec, model: Any, data: Any, *, depth: bool) -> np.ndarray:
        """rgb8 (h, w, 3) uint8, or depth (h, w) float32 metres along the optical axis with REP-117
        +inf beyond the far clip and -inf nearer than the near clip."""
        if self.error is not None:
            raise SimulatorError(self.error)
        r = self._renderer(model, spec.width, spec.height)
        extent = float(model.stat.extent)
        near, far = (spec.depth_near, spec.depth_far) if depth else (spec.near, spec.far)
        # Depth renders with a nearer plane so that things inside the near clip read -inf, not what is behind.
        render_near = near * 0.25 if depth else near
        model.vis.map.znear = render_near / extent
        model.vis.map.zfar = far / extent
        camera = device_site(spec.model, spec.link, spec.name)
        if depth:
            r.enable_depth_rendering()
        else:
            r.disable_depth_rendering()
        r.update_scene(data, camera=camera, scene_option=self._option)
        out = r.render()
        if depth:
            img = np.array(out, dtype=np.float32)
            beyond, inside = img >= far * (1 - 1e-4), img < near  # from the true depth: noise moves no pixel out
            noise = spec.image_noise
            if noise.active and noise.stddev > 0:
                img += self.rng.standard_normal(img.shape, dtype=np.float32) * np.float32(noise.stddev)
                img += np.float32(noise.mean)
            img[beyond] = np.inf
            img[inside] = -np.inf
            return img
        img = np.asarray(out)
        noise = spec.image_noise
        if noise.active and noise.stddev > 0:
            # gz ImageGaussianNoiseModel: one value per pixel, added to each of its channels, in [0, 1] units.
            h, w = img.shape[:2]
            delta = self.rng.standard_normal((h, w, 1), dtype=np.float32) * (255.0 * noise.stddev)
            delta += np.float32(255.0 * noise.mean)
            img = np.clip(img + delta, 0, 255).astype(np.uint8)
        return img

    def close(self) -> None:
        for r in self._renderers.values():
            with contextlib.suppress(Exception):  # a context already gone at exit
                r.close()
        self._renderers.clear()


def points_xyz(spec: SensorSpec, depth: np.ndarray) -> np.ndarray:
    """(h, w, 3) float32 points from a depth image like gz-sensors' PointCloudUtil (sensor frame: x forward,
    y left, z up), or in the optical frame (x right, y down, z forward) for gazebo_ros_camera."""
    h, w = depth.shape
    f = spec.fx
    cols = ((0.5 * (w - 1) - np.arange(w)) / f).astype(np.float32)  # tan of the angle to the left
    rows = ((0.5 * (h - 1) - np.arange(h)) / f).astype(np.float32)  # tan of the angle upwards
    with np.errstate(invalid="ignore"):
        left = depth * cols[None, :]
        up = depth * rows[:, None]
    if spec.optical_points:
        return np.stack([-left, -up, depth], axis=-1)
    return np.stack([depth, left, up], axis=-1)


def navsat_fix(origin: Sequence[float], xyz: Sequence[float]) -> tuple[float, float, float]:
    """(latitude, longitude, altitude) of a world position; ``origin`` = (lat deg, lon deg, elevation m,
    heading deg) from ``<spherical_coordinates>`` (ENU world frame rotated by the heading)."""
    lat0, lon0, elev, heading = (math.radians(origin[0]), math.radians(origin[1]), origin[2], math.radians(origin[3]))
    x, y, z = xyz
    # heading_deg: rotation of the world frame about the up axis (sdformat world.sdf).
    east = x * math.cos(heading) - y * math.sin(heading)
    north = x * math.sin(heading) + y * math.cos(heading)
    e2 = _WGS84_F * (2 - _WGS84_F)
    s = math.sin(lat0)
    meridian = _WGS84_A * (1 - e2) / (1 - e2 * s * s) ** 1.5
    normal = _WGS84_A / math.sqrt(1 - e2 * s * s)
    lat = lat0 + north / (meridian + elev)
    lon = lon0 + east / ((normal + elev) * math.cos(lat0))
    return math.degrees(lat), math.degrees(lon), elev + z
