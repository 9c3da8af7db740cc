"""MuJoCo rigid-body physics for a world: DiffDrive controller, wheel odometry, lidar, entities.

Not a kinematic integrator: the wheels are velocity-servoed hinge joints, the robot rests on the ground
through contacts and obstacles stop it physically. The controller mirrors Gazebo's DiffDrive system:
the (vx, wz) command passes a SpeedLimiter (jerk, acceleration, velocity; applied every step) and
becomes wheel speed targets; odometry integrates the wheel joint angles like gz::math::DiffDriveOdometry,
so it drifts from ground truth when wheels slip.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_simtwin.errors import ModelError, SimulatorError
from pytest_simtwin.sim.engine import twin_model
from pytest_simtwin.sim.engine.contacts import robot_contacts
from pytest_simtwin.sim.engine.lidar import Lidar
from pytest_simtwin.sim.world.mjcf import ENV_BITS, ENV_GROUP, SOLIMP, Layout, to_mjcf
from pytest_simtwin.sim.world.model import DiffDriveSpec, Pose, WorldSpec

#: Odometry covariance diagonals (x, y, z, roll, pitch, yaw): planar odometry, z/roll/pitch unobserved.
POSE_COVARIANCE = (1e-3, 1e-3, 1e6, 1e6, 1e6, 1e-3)
TWIST_COVARIANCE = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)
VELOCITY_WINDOW = 10  # samples of the rolling mean, as gz::math::DiffDriveOdometry


def _diag36(values: tuple[float, ...]) -> tuple[float, ...]:
    out = [0.0] * 36
    for i, v in enumerate(values):
        out[i * 7] = v
    return tuple(out)


@dataclass(frozen=True)
class Odom:
    x: float
    y: float
    yaw: float
    vx: float
    wz: float
    pose_covariance: tuple[float, ...] = _diag36(POSE_COVARIANCE)
    twist_covariance: tuple[float, ...] = _diag36(TWIST_COVARIANCE)


@dataclass(frozen=True)
class Truth:
    x: float
    y: float
    z: float
    qx: float
    qy: float
    qz: float
    qw: float
    vx: float
    vy: float
    vz: float
    wx: float
    wy: float
    wz: float


class SpeedLimiter:
    """gz::math::SpeedLimiter: jerk, then acceleration, then velocity limits on one axis."""

    def __init__(self, vmin: float, vmax: float, amin: float, amax: float, jmin: float, jmax: float) -> None:
        self.vmin, self.vmax, self.amin, self.amax, self.jmin, self.jmax = vmin, vmax, amin, amax, jmin, jmax
        self.has_jerk = math.isfinite(jmin) or math.isfinite(jmax)

    def limit(self, v: float, v0: float, v1: float, dt: float) -> float:
        if self.has_jerk:
            dv0 = v0 - v1
            da = min(max(v - v0 - dv0, self.jmin * dt * dt), self.jmax * dt * dt)
            v = v0 + dv0 + da
        v = v0 + min(max(v - v0, self.amin * dt), self.amax * dt)
        return min(max(v, self.vmin), self.vmax)


class WheelOdometry:
    """gz::math::DiffDriveOdometry: exact arc integration of wheel travel, rolling-mean velocities."""

    def __init__(self, separation: float, radius: float) -> None:
        self.separation, self.radius = separation, radius
        self.reset(0.0, 0.0)

    def reset(self, left: float, right: float) -> None:
        self.x = self.y = self.yaw = 0.0
        self.left, self.right = left * self.radius, right * self.radius
        self._lin: deque[float] = deque(maxlen=VELOCITY_WINDOW)
        self._ang: deque[float] = deque(maxlen=VELOCITY_WINDOW)

    def update(self, left: float, right: float, dt: float) -> None:
        lpos, rpos = left * self.radius, right * self.radius
        dl, dr = lpos - self.left, rpos - self.right
        self.left, self.right = lpos, rpos
        linear = (dl + dr) * 0.5
        angular = (dr - dl) / self.separation
        if abs(angular) < 1e-6:  # Runge-Kutta 2 for straight segments
            heading = self.yaw + angular * 0.5
            self.x += linear * math.cos(heading)
            self.y += linear * math.sin(heading)
            self.yaw += angular
        else:
            old = self.yaw
            r = linear / angular
            self.yaw += angular
            self.x += r * (math.sin(self.yaw) - math.sin(old))
            self.y += -r * (math.cos(self.yaw) - math.cos(old))
        self._lin.append(linear / dt)
        self._ang.append(angular / dt)

    def velocities(self) -> tuple[float, float]:
        if not self._lin:
            return 0.0, 0.0
        return sum(self._lin) / len(self._lin), sum(self._ang) / len(self._ang)


def _pose_from(pose: Pose | dict[str, float] | None, base: Pose) -> Pose:
    if pose is None:
        return base
    if isinstance(pose, Pose):
        return pose
    unknown = set(pose) - {"x", "y", "z", "roll", "pitch", "yaw"}
    if unknown:
        raise ValueError(f"unknown pose keys {sorted(unknown)}; expected x, y, z, roll, pitch, yaw")
    values = base.as_dict()
    values.update({k: float(v) for k, v in pose.items()})
    if not all(math.isfinite(v) for v in values.values()):
        raise ValueError(f"pose values must be finite; got {pose}")
    return Pose(**values)


class Physics:
    """One simulated world (see docs/design.md, "Simulator internal contract")."""

    def __init__(self, world: WorldSpec, seed: int = 0) -> None:
        import mujoco

        self._mj = mujoco
        self.world = world
        self.seed = seed
        self.step_size = world.step_size
        xml, self.layout = to_mjcf(world)
        self.mjcf = xml
        try:
            self.spec = mujoco.MjSpec.from_string(xml)
            self.model = self.spec.compile()
        except Exception as exc:  # MuJoCo raises ValueError with its own message (bad mesh, ...)
            raise ModelError(
                f"{world.source or 'built-in world'}: MuJoCo could not compile the world: {exc}. "
                "Check the meshes and sizes named in the message."
            ) from None
        self.data = mujoco.MjData(self.model)
        robot = world.robot
        assert robot.diff_drive is not None
        self.dd: DiffDriveSpec = robot.diff_drive
        self._lin = SpeedLimiter(self.dd.min_linear_velocity, self.dd.max_linear_velocity,
                                 self.dd.min_linear_acceleration, self.dd.max_linear_acceleration,
                                 self.dd.min_linear_jerk, self.dd.max_linear_jerk)  # fmt: skip
        self._ang = SpeedLimiter(self.dd.min_angular_velocity, self.dd.max_angular_velocity,
                                 self.dd.min_angular_acceleration, self.dd.max_angular_acceleration,
                                 self.dd.min_angular_jerk, self.dd.max_angular_jerk)  # fmt: skip
        self._odom = WheelOdometry(self.dd.wheel_separation, self.dd.wheel_radius)
        # the calibrated twin's delay, lag and gains (robot file / $SIMTWIN_TWIN_OVERRIDES), if any
        twin = twin_model.load(robot.source, self.dd.wheel_radius, self.dd.wheel_separation)
        self.twin = twin_model.CommandPath(twin, self.dd.wheel_radius, self.dd.wheel_separation) if twin else None
        self._spawned: dict[str, Any] = {}  # name -> MjsBody
        self._static_poses = {
            e.body: (tuple(self.model.body(e.body).pos), tuple(self.model.body(e.body).quat))
            for e in self.layout.entities.values()
            if e.static
        }
        # MuJoCo resets the state silently (after a log warning) when it diverges: count to notice.
        self._badqacc = int(mujoco.mjtWarning.mjWARN_BADQACC)
        self._bind()
        self._reset_controller()
        self.steps = 0

    # -- indices (recomputed after every recompile) -----------------------------------------------

    def _bind(self) -> None:
        m = self.model
        lay: Layout = self.layout
        self._left_q = m.joint(lay.left_joints[0]).qposadr[0]
        self._right_q = m.joint(lay.right_joints[0]).qposadr[0]
        self._left_act = [m.actuator(a).id for a in lay.left_actuators]
        self._right_act = [m.actuator(a).id for a in lay.right_actuators]
        self._root = m.body(lay.robot_body).id
        free = m.body_jntadr[self._root]
        self._root_q, self._root_v = m.jnt_qposadr[free], m.jnt_dofadr[free]
        self._joints = [(name, m.joint(j).qposadr[0], m.joint(j).dofadr[0]) for j, name in lay.robot_joints]
        self._diverged = int(self.data.warning[self._badqacc].number)
        self.lidars = [
            Lidar(spec, m.site(site).id) for spec, site in zip(self.world.robot.lidars, lay.lidar_sites, strict=True)
        ]

    def _reset_controller(self) -> None:
        if self.twin is not None:
            self.twin.reset()
        self._target = (0.0, 0.0)
        self._v0 = self._v1 = (0.0, 0.0)
        self._odom.reset(float(self.data.qpos[self._left_q]), float(self.data.qpos[self._right_q]))
        self.rng = np.random.default_rng(self.seed)

    # -- stepping ---------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        return float(self.data.time)

    def set_command(self, vx: float, wz: float) -> None:
        """New (vx, wz) target; limits apply per step. Non-finite values are refused."""
        if not (math.isfinite(vx) and math.isfinite(wz)):
            raise ValueError(f"velocity command must be finite; got vx={vx}, wz={wz}")
        self._target = (float(vx), float(wz))

    def step(self, n: int = 1) -> None:
        mj, m, d, dt = self._mj, self.model, self.data, self.step_size
        ctrl, qpos = d.ctrl, d.qpos
        half, radius = self.dd.wheel_separation / 2, self.dd.wheel_radius
        twin = self.twin
        for _ in range(n):
            tv, tw = self._target if twin is None else twin.target(self._target, float(d.time))
            (v0, w0), (v1, w1) = self._v0, self._v1
            if not (tv == v0 == v1 and tw == w0 == w1):  # settled: skip the limiter
                v = self._lin.limit(tv, v0, v1, dt)
                w = self._ang.limit(tw, w0, w1, dt)
                self._v1, self._v0 = self._v0, (v, w)
            else:
                v, w = v0, w0
            if twin is not None:
                v, w = twin.response(v, w, dt)
            left, right = (v - w * half) / radius, (v + w * half) / radius
            for a in self._left_act:
                ctrl[a] = left
            for a in self._right_act:
                ctrl[a] = right
            mj.mj_step(m, d)
            self._odom.update(float(qpos[self._left_q]), float(qpos[self._right_q]), dt)
        self.steps += n
        diverged = int(d.warning[self._badqacc].number)
        if diverged != self._diverged:
            self._diverged = diverged
            start = (self.steps - n) * dt
            raise SimulatorError(
                f"the physics of world {self.world.name!r} diverged (NaN/huge accelerations) between sim step "
                f"{self.steps - n} and {self.steps} (MuJoCo reset the state, so results after this are void). "
                "Expected stable masses and inertias; check the <inertial> values of light links, overlapping "
                f"dynamic bodies and joint limits, or lower <max_step_size> (now {dt} s). Time before: {start:.3f} s."
            )

    # -- readings ---------------------------------------------------------------------------------

    def odometry(self) -> Odom:
        o = self._odom
        vx, wz = o.velocities()
        return Odom(o.x, o.y, o.yaw, vx, wz)

    def ground_truth(self) -> Truth:
        q, v = self.data.qpos, self.data.qvel
        a, b = self._root_q, self._root_v
        qw, qx, qy, qz = (float(x) for x in q[a + 3 : a + 7])
        w_local = np.array(v[b + 3 : b + 6])
        rot = np.empty(9)
        self._mj.mju_quat2Mat(rot, np.array([qw, qx, qy, qz]))
        wx, wy, wz = rot.reshape(3, 3) @ w_local  # free-joint angular velocity is in the body frame
        return Truth(float(q[a]), float(q[a + 1]), float(q[a + 2]), qx, qy, qz, qw,
                     float(v[b]), float(v[b + 1]), float(v[b + 2]), float(wx), float(wy), float(wz))  # fmt: skip

    def joint_states(self) -> tuple[list[str], list[float], list[float]]:
        q, v = self.data.qpos, self.data.qvel
        return ([j[0] for j in self._joints], [float(q[j[1]]) for j in self._joints],
                [float(v[j[2]]) for j in self._joints])  # fmt: skip

    def lidar_scan(self, index: int = 0) -> array[float]:
        return self.lidars[index].scan(self.model, self.data, self.rng)

    # -- entities ---------------------------------------------------------------------------------

    def contacts(self) -> list[str]:
        """Entities touching the robot now, the ground excluded (sim/engine/contacts.py)."""
        bodies = {e.body: name for name, e in self.layout.entities.items()}
        return robot_contacts(self.model, self.data, self._root, bodies)

    def entities(self) -> list[str]:
        return [*self.layout.entities, *self._spawned]

    def _entity(self, name: str) -> tuple[int, bool, Pose]:
        if name in self.layout.entities:
            e = self.layout.entities[name]
            return self.model.body(e.body).id, e.static, e.offset
        if name in self._spawned:
            body = self.model.body(name)
            return body.id, self.model.body_jntnum[body.id] == 0, Pose()
        raise ValueError(f"no entity {name!r}; known: {', '.join(self.entities())}")

    def _body_pose(self, body: int, static: bool) -> Pose:
        if static:
            pos, quat = self.model.body_pos[body], self.model.body_quat[body]
        else:
            a = self.model.jnt_qposadr[self.model.body_jntadr[body]]
            pos, quat = self.data.qpos[a : a + 3], self.data.qpos[a + 3 : a + 7]
        return Pose.from_quaternion(*(float(x) for x in pos), *(float(x) for x in quat))

    def entity_state(self, name: str) -> dict[str, Any]:
        body, static, offset = self._entity(name)
        pose = self._body_pose(body, static) * offset
        twist = dict.fromkeys(("vx", "vy", "vz", "wx", "wy", "wz"), 0.0)
        if not static:
            b = self.model.jnt_dofadr[self.model.body_jntadr[body]]
            v = self.data.qvel
            rot = self._body_pose(body, False).rotation()
            w = rot @ np.array(v[b + 3 : b + 6])
            twist = {"vx": float(v[b]), "vy": float(v[b + 1]), "vz": float(v[b + 2]),
                     "wx": float(w[0]), "wy": float(w[1]), "wz": float(w[2])}  # fmt: skip
        return {"name": name, "pose": pose.as_dict(), "twist": twist}

    def set_entity_state(self, name: str, pose: dict[str, float] | Pose | None = None,
                         twist: dict[str, float] | None = None) -> dict[str, Any]:  # fmt: skip
        """Teleport an entity (omitted pose keys keep their value); ``twist`` is in the world frame."""
        body, static, offset = self._entity(name)
        current = self._body_pose(body, static) * offset
        target = _pose_from(pose, current) * offset.inverse()
        quat = target.quaternion()
        if static:
            if twist and any(twist.values()):
                raise ValueError(f"entity {name!r} is static; it cannot have a velocity")
            self.model.body_pos[body] = (target.x, target.y, target.z)
            self.model.body_quat[body] = quat
            spec_body = self.spec.body(self.model.body(body).name)
            spec_body.pos, spec_body.quat = [target.x, target.y, target.z], list(quat)
        else:
            a = self.model.jnt_qposadr[self.model.body_jntadr[body]]
            self.data.qpos[a : a + 7] = (target.x, target.y, target.z, *quat)
            if twist is not None:
                unknown = set(twist) - {"vx", "vy", "vz", "wx", "wy", "wz"}
                if unknown:
                    raise ValueError(f"unknown twist keys {sorted(unknown)}; expected vx, vy, vz, wx, wy, wz")
                if not all(math.isfinite(float(v)) for v in twist.values()):
                    raise ValueError(f"twist values must be finite; got {twist}")
                b = self.model.jnt_dofadr[self.model.body_jntadr[body]]
                w = np.array([twist.get(k, 0.0) for k in ("wx", "wy", "wz")], dtype=float)
                self.data.qvel[b : b + 3] = [twist.get(k, 0.0) for k in ("vx", "vy", "vz")]
                self.data.qvel[b + 3 : b + 6] = target.rotation().T @ w
        self._mj.mj_forward(self.model, self.data)
        return self.entity_state(name)

    def spawn(self, name: str, shape: str, size: list[float] | tuple[float, ...], pose: dict[str, float] | Pose,
              static: bool = True, mass: float | None = None) -> str:  # fmt: skip
        """Add a box ([x, y, z] full lengths), cylinder ([radius, length]) or sphere ([radius])."""
        mj = self._mj
        taken = name in self.entities() or self._mj.mj_name2id(self.model, mj.mjtObj.mjOBJ_BODY, name) >= 0
        if not name or taken:
            raise ValueError(f"entity name {name!r} is empty or already used; pick another name")
        kinds = {"box": (mj.mjtGeom.mjGEOM_BOX, 3), "cylinder": (mj.mjtGeom.mjGEOM_CYLINDER, 2),
                 "sphere": (mj.mjtGeom.mjGEOM_SPHERE, 1)}  # fmt: skip
        if shape not in kinds:
            raise ValueError(f"unknown shape {shape!r}; expected box, cylinder or sphere")
        kind, count = kinds[shape]
        size = [float(s) for s in size]
        if len(size) != count or any(not (s > 0 and math.isfinite(s)) for s in size):
            raise ValueError(f"{shape} size must be {count} positive numbers; got {size}")
        if mass is not None and not (mass > 0 and math.isfinite(mass)):
            raise ValueError(f"mass must be positive; got {mass}")
        p = _pose_from(pose, Pose())
        half = [s / 2 for s in size] if shape == "box" else ([size[0], size[1] / 2] if shape == "cylinder" else size)
        body = self.spec.worldbody.add_body(name=name, pos=[p.x, p.y, p.z], quat=list(p.quaternion()))
        geom = body.add_geom(type=kind, size=half + [0.0] * (3 - len(half)), group=ENV_GROUP)
        geom.contype, geom.conaffinity = ENV_BITS
        geom.solimp[:3] = [float(v) for v in SOLIMP.split()]
        if not static:
            body.add_freejoint()
            geom.mass = mass if mass is not None else 1.0
        try:
            self._recompile()
        except ValueError as exc:  # MuJoCo refused the new body: take it out so the spec stays valid
            self.spec.delete(body)
            raise ValueError(f"cannot spawn {name!r}: {exc}") from None
        self._spawned[name] = body
        return name

    def remove(self, name: str) -> None:
        if name not in self._spawned:
            if name in self.layout.entities:
                raise ValueError(f"entity {name!r} comes from the world file; only spawned entities can be removed")
            raise ValueError(f"no spawned entity {name!r}; spawned: {', '.join(self._spawned) or '(none)'}")
        self.spec.delete(self._spawned.pop(name))
        self._recompile()

    def _recompile(self) -> None:
        self.model, self.data = self.spec.recompile(self.model, self.data)
        self._bind()
        self._mj.mj_forward(self.model, self.data)

    def reset(self, scope: str = "all", seed: int | None = None) -> None:
        """all: initial state, time 0, spawned removed, noise generator re-seeded (with ``seed``
        when given, else the start seed) so a reset run repeats bit for bit; time: clock only;
        state: poses/velocities and controller only; spawned: remove spawned entities only."""
        if scope not in ("all", "time", "state", "spawned"):
            raise ValueError(f"unknown reset scope {scope!r}; expected all, time, state or spawned")
        if scope in ("all", "spawned") and self._spawned:
            for body in self._spawned.values():
                self.spec.delete(body)
            self._spawned.clear()
            self._recompile()
        if scope in ("all", "state"):
            time, steps = self.data.time, self.steps
            for body, (pos, quat) in self._static_poses.items():
                self.model.body(body).pos[:], self.model.body(body).quat[:] = pos, quat
                self.spec.body(body).pos, self.spec.body(body).quat = list(pos), list(quat)
            self._mj.mj_resetData(self.model, self.data)
            self._mj.mj_forward(self.model, self.data)
            self._diverged = int(self.data.warning[self._badqacc].number)
            self._reset_controller()
            if scope == "state":
                self.data.time, self.steps = time, steps
        if scope == "all":
            if seed is not None:
                self.seed = int(seed)
            self.rng = np.random.default_rng(self.seed)
        if scope in ("all", "time"):
            self.data.time = 0.0
            self.steps = 0
