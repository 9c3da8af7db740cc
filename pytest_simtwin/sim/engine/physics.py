"""MuJoCo rigid-body physics for a world: stepping, readings (odometry, ground truth, joints, lidar), entities.

Not a kinematic integrator: the wheels are velocity-servoed hinge joints, the robot rests on the ground
through contacts and obstacles stop it physically. Each robot's DiffDrive controller (speed limiters,
wheel servo targets, wheel odometry) is :mod:`pytest_simtwin.sim.engine.drive`; this module steps it
with MuJoCo, so odometry drifts from ground truth when wheels slip.
"""

from __future__ import annotations

import math
import re
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_simtwin.errors import ModelError, SimulatorError
from pytest_simtwin.sim.engine import twin_model
from pytest_simtwin.sim.engine.contacts import robot_contacts
from pytest_simtwin.sim.engine.drive import Drive, twin_path
from pytest_simtwin.sim.engine.lidar import Lidar
from pytest_simtwin.sim.engine.servos import Servos
from pytest_simtwin.sim.world.mjcf import (
    DEFAULT_FRICTION,
    ENV_BITS,
    ENV_GROUP,
    SOLIMP,
    Layout,
    friction_priority,
    to_mjcf,
)
from pytest_simtwin.sim.world.model import DiffDriveSpec, Pose, WorldSpec

#: Odometry covariance diagonals (x, y, z, roll, pitch, yaw): planar odometry, z/roll/pitch unobserved.
POSE_COVARIANCE = (1e-3, 1e-3, 1e6, 1e6, 1e6, 1e-3)
TWIST_COVARIANCE = (1e-4, 1e-4, 1e6, 1e6, 1e6, 1e-3)


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


def compile_error(world: WorldSpec, origins: dict[str, str], message: str) -> ModelError:
    """MuJoCo's compiler message, pointed at the user's file and element (never the generated MJCF's line)."""
    text = re.sub(r"\s*Element name '[^']*', id \d+", "", message.strip())
    text = re.sub(r",?\s*line \d+(, column \d+)?", "", text).replace("Error: ", "").strip().rstrip(".")
    names = re.findall(r"[Ee]lement name '([^']*)'", message)
    where = next((origins[n] for n in names if n in origins), None)
    if where is None:
        robot = next((m for m in world.models if m.diff_drive is not None), None)
        user = robot.source if robot is not None and robot.source is not None else world.source
        where = str(user) if user is not None else "built-in world"
    return ModelError(
        f"{where}: MuJoCo could not compile this element: {text}. Expected valid masses, inertias "
        "(positive, ixx + iyy >= izz) and sizes; fix the named element."
    )


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
            raise compile_error(world, self.layout.origins, str(exc)) from None
        self.data = mujoco.MjData(self.model)
        robot = world.robot
        assert robot.diff_drive is not None
        self.dd: DiffDriveSpec = robot.diff_drive
        #: every robot's controller by model name (world order; the first is ``world.robot``).
        self.drives = {m.name: Drive(m.diff_drive, twin_path(m)) for m in world.robots if m.diff_drive is not None}
        self._drive_list = list(self.drives.values())
        self._primary = self._drive_list[0]
        #: position-servoed joints (ros2_control position command interfaces) of the robots that have them.
        self.servos = {m.name: Servos(m) for m in world.robots if m.servos}
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
        for name, drive in self.drives.items():
            drive.bind(m, lay.robots[name])
        for name, servos in self.servos.items():
            servos.bind(m, lay.robots[name])
        self._diverged = int(self.data.warning[self._badqacc].number)
        #: every robot's lidars, robot by robot in world order; ``lidar_robots[i]`` owns ``lidars[i]``.
        self.lidars = []
        self.lidar_robots: list[str] = []
        for model in self.world.robots:
            rl = lay.robots[model.name]
            for spec, site in zip(model.lidars, rl.lidar_sites, strict=True):
                self.lidars.append(Lidar(spec, m.site(site).id, rl.group))
                self.lidar_robots.append(model.name)

    def _reset_controller(self) -> None:
        for drive in self._drive_list:
            drive.reset(self.data.qpos)
        for servos in self.servos.values():
            servos.reset(self.data.qpos)
        self.rng = np.random.default_rng(self.seed)

    # -- stepping ---------------------------------------------------------------------------------

    @property
    def time(self) -> float:
        return float(self.data.time)

    def _drive(self, robot: str | None) -> Drive:
        if robot is None:
            return self._primary
        drive = self.drives.get(robot)
        if drive is None:
            raise ValueError(f"no robot {robot!r}; robots: {', '.join(self.drives)}")
        return drive

    def set_command(self, vx: float, wz: float, robot: str | None = None) -> None:
        """New (vx, wz) target of ``robot`` (default: the first); limits apply per step. Non-finite values are refused."""
        if not (math.isfinite(vx) and math.isfinite(wz)):
            raise ValueError(f"velocity command must be finite; got vx={vx}, wz={wz}")
        self._drive(robot).target = (float(vx), float(wz))

    def joint_command(self, robot: str, controller: str, command: dict[str, Any]) -> None:
        """A position controller's command (``{"values": [...]}`` or ``{"names", "points", "start"}``; start
        None = now). ValueError names what is wrong; the joints then keep their command."""
        servos = self.servos.get(robot)
        if servos is None:
            raise ValueError(f"robot {robot!r} has no position-commanded joints")
        if "values" in command:
            servos.set_group(controller, command["values"])
        else:
            start = command.get("start")
            servos.set_trajectory(controller, command["names"], command["points"],
                                  self.time if start is None else float(start))  # fmt: skip

    def step(self, n: int = 1) -> None:
        mj, m, d, dt = self._mj, self.model, self.data, self.step_size
        ctrl, qpos = d.ctrl, d.qpos
        drives, servos = self._drive_list, list(self.servos.values())
        for _ in range(n):
            for drive in drives:
                drive.command(ctrl, dt, float(d.time), d.qvel)
            for servo in servos:
                servo.command(ctrl, qpos, float(d.time))
            mj.mj_step(m, d)
            for drive in drives:
                if drive.open_loop:
                    drive.odom.integrate(drive.v * dt, drive.w * dt, dt)
                else:
                    drive.odom.update(float(qpos[drive.left_q]), float(qpos[drive.right_q]), dt)
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

    def odometry(self, robot: str | None = None) -> Odom:
        drive = self._drive(robot)
        if drive.odom_from_world:  # gazebo_ros_diff_drive's default odometry_source: the model's world pose
            t = self.ground_truth(robot)
            yaw = math.atan2(2 * (t.qw * t.qz + t.qx * t.qy), 1 - 2 * (t.qy * t.qy + t.qz * t.qz))
            return Odom(t.x, t.y, yaw, math.cos(yaw) * t.vx + math.sin(yaw) * t.vy, t.wz)
        o = drive.odom
        vx, wz = o.velocities()
        return Odom(o.x, o.y, o.yaw, vx, wz)

    def ground_truth(self, robot: str | None = None) -> Truth:
        q, v = self.data.qpos, self.data.qvel
        drive = self._drive(robot)
        a, b = drive.root_q, drive.root_v
        qw, qx, qy, qz = (float(x) for x in q[a + 3 : a + 7])
        w_local = np.array(v[b + 3 : b + 6])
        rot = np.empty(9)
        self._mj.mju_quat2Mat(rot, np.array([qw, qx, qy, qz]))
        wx, wy, wz = rot.reshape(3, 3) @ w_local  # free-joint angular velocity is in the body frame
        return Truth(float(q[a]), float(q[a + 1]), float(q[a + 2]), qx, qy, qz, qw,
                     float(v[b]), float(v[b + 1]), float(v[b + 2]), float(wx), float(wy), float(wz))  # fmt: skip

    def joint_states(self, robot: str | None = None) -> tuple[list[str], list[float], list[float]]:
        q, v = self.data.qpos, self.data.qvel
        joints = self._drive(robot).joints
        return ([j[0] for j in joints], [float(q[j[1]]) for j in joints],
                [float(v[j[2]]) for j in joints])  # fmt: skip

    def lidar_scan(self, index: int = 0) -> array[float]:
        return self.lidars[index].scan(self.model, self.data, self.rng)

    # -- entities ---------------------------------------------------------------------------------

    @property
    def twin(self) -> twin_model.CommandPath | None:
        """The first robot's calibrated command path (delay, lag, gains), None when it is nominal."""
        return self._primary.twin

    def contacts(self) -> list[str]:
        """Entities touching the robot now, the ground excluded (sim/engine/contacts.py)."""
        bodies = {e.body: name for name, e in self.layout.entities.items()}
        return robot_contacts(self.model, self.data, self._primary.root, bodies)

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
        # named like a world file's collision (model::link::collision): contact sensors report it so
        geom = body.add_geom(name=f"{name}::link::collision", type=kind, size=half + [0.0] * (3 - len(half)),
                             group=ENV_GROUP)  # fmt: skip
        geom.contype, geom.conaffinity = ENV_BITS
        geom.solimp[:3] = [float(v) for v in SOLIMP.split()]
        geom.priority = friction_priority(DEFAULT_FRICTION)  # sdformat's default mu, combined by min
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
