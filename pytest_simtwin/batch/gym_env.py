"""A Gymnasium environment over one simulator, and a vector environment over a SimPool.

Observation: ``{"odom": [x, y, yaw, vx, wz], "scan": lidar ranges}`` (float32; REP-117 +inf
readings become ``range_max`` and -inf become ``range_min`` so the values stay inside the space).
Action: ``[linear m/s, angular rad/s]`` within the robot's DiffDrive limits.
Every ``step`` applies the action through the stepping API (pause, publish, confirm, step
``control_dt`` sim seconds), so a seeded rollout is reproducible bit for bit and as fast as the
simulator steps. ``reset`` resets the simulator (``reset_simulation``, scope all).

The default task is goal reaching: a goal is drawn from ``np_random`` at reset; the reward is the
progress towards it minus a small time penalty; reaching it ends the episode (+10), getting closer
than ``collision_distance`` to an obstacle ends it too (-10). Pass ``reward_fn`` for another task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from pytest_simtwin._internal.waiting import wait_until
from pytest_simtwin.batch.pool import SimPool
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.ros.messages import stamp_seconds

if TYPE_CHECKING:
    from pytest_simtwin.batch.pool import PoolMember, SimPool
    from pytest_simtwin.helpers.robot import Robot

Obs = dict[str, npt.NDArray[np.float32]]
RewardFn = Callable[["SimTwinEnv", Obs, npt.NDArray[np.float32]], tuple[float, bool]]


class SimTwinEnv(gym.Env[Obs, npt.NDArray[np.float32]]):
    """One simulator as a Gymnasium environment (construct it on a :class:`PoolMember`)."""

    metadata = {"render_modes": []}  # noqa: RUF012 - Gymnasium's convention

    def __init__(
        self,
        member: PoolMember | None = None,
        *,
        control_dt: float = 0.1,
        max_episode_steps: int = 200,
        goal_radius: tuple[float, float] = (0.5, 1.5),
        goal_tolerance: float = 0.15,
        collision_distance: float = 0.15,
        reward_fn: RewardFn | None = None,
        pool_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if control_dt <= 0:
            raise ConfigError(f"SimTwinEnv: control_dt must be > 0 sim seconds, found {control_dt}")
        self._own_pool: SimPool | None = None
        if member is None:
            # A standalone environment owns a pool of one (lockstep: time moves only when we step).

            kwargs = {"lockstep": True, **(pool_kwargs or {})}
            self._own_pool = SimPool(1, **kwargs).start()
            member = self._own_pool[0]
        self.member = member
        self.control_dt = float(control_dt)
        self.max_episode_steps = int(max_episode_steps)
        self.goal_radius = goal_radius
        self.goal_tolerance = goal_tolerance
        self.collision_distance = collision_distance
        self.reward_fn = reward_fn
        self.robot: Robot = member.robot()
        topics = member.session.topics()
        vmax = float(topics.get("max_linear_velocity") or 0.5)
        wmax = float(topics.get("max_angular_velocity") or 2.0)
        self.action_space: spaces.Box = spaces.Box(  # type: ignore[assignment]
            low=np.array([-vmax, -wmax], dtype=np.float32),
            high=np.array([vmax, wmax], dtype=np.float32),
            dtype=np.float32,
        )
        scan = self.robot.wait_for_scan(timeout=10.0) if topics.get("scan") else None
        self._scan_rate = 0.0
        if scan is not None:
            first = scan
            second = self.robot.wait_for_scan(timeout=10.0)

            gap = stamp_seconds(second.header.stamp) - stamp_seconds(first.header.stamp)
            self._scan_rate = 1.0 / gap if gap > 0 else 0.0
        self._scan_shape = len(scan.ranges) if scan is not None else 0
        self._range_min = float(scan.range_min) if scan is not None else 0.0
        self._range_max = float(scan.range_max) if scan is not None else 1.0
        big = np.float32(1e6)
        self.observation_space: spaces.Dict = spaces.Dict(  # type: ignore[assignment]
            {
                "odom": spaces.Box(low=-big, high=big, shape=(5,), dtype=np.float32),
                "scan": spaces.Box(
                    low=np.float32(self._range_min),
                    high=np.float32(self._range_max),
                    shape=(self._scan_shape,),
                    dtype=np.float32,
                ),
            }
        )
        self.goal = np.zeros(2, dtype=np.float64)
        self._steps = 0
        self._last_distance = 0.0

    # -- observation -----------------------------------------------------------------------------
    def _observe(self) -> Obs:
        pose = self.robot.pose
        vel = self.robot.velocity
        odom = np.array([pose.x, pose.y, pose.yaw, vel.vx, vel.wz], dtype=np.float32)
        if self._scan_shape:
            ranges = np.asarray(self._fresh_scan().ranges, dtype=np.float32)
            ranges = np.nan_to_num(ranges, nan=self._range_max, posinf=self._range_max, neginf=self._range_min)
            scan = np.clip(ranges, self._range_min, self._range_max).astype(np.float32)
        else:
            scan = np.zeros(0, dtype=np.float32)
        return {"odom": odom, "scan": scan}

    def _fresh_scan(self) -> Any:
        """The scan published last before the current sim time (the simulator is paused here)."""
        from sensor_msgs.msg import LaserScan


        st = self.member.control.state()
        now = float(st["sim_time"])
        period = 1.0 / self._scan_rate if self._scan_rate > 0 else self.control_dt
        scan_stamp = st.get("scan_stamp")
        if scan_stamp is not None:
            # The simulator names its last scan's stamp: wait for exactly that message.
            period = now - float(scan_stamp) + 1e-9
        buf = self.member.ros.subscribe(str(self.member.session.topics()["scan"]), LaserScan)

        def fresh() -> Any | None:
            msg = buf.latest()
            # Bounded on both sides: after a reset rewound the clock, older scans carry later stamps.
            stamp = stamp_seconds(msg.header.stamp) if msg is not None else -1.0
            return msg if now - period - 1e-9 <= stamp <= now + 1e-9 else None

        return wait_until(
            fresh, 5.0, what=f"a LaserScan stamped after {now - period:.3f} s on domain {self.member.domain_id}"
        )

    def _goal_distance(self, obs: Obs) -> float:
        return float(math.hypot(self.goal[0] - obs["odom"][0], self.goal[1] - obs["odom"][1]))

    # -- Gymnasium API -----------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Obs, dict[str, Any]]:
        super().reset(seed=seed)
        control = self.member.control
        # The simulator's sensor noise follows the episode seed, so equal seeds give equal rollouts
        # on any simulator of the pool.
        sim_seed = int(self.np_random.integers(2**31))
        control.reset("all", seed=sim_seed)
        control.pause()
        # One zero-velocity step gives fresh sensor data at a well-defined sim time.
        self.robot.send_velocity(0.0, 0.0, self.control_dt, stop=False)
        obs = self._observe()
        r = self.np_random.uniform(*self.goal_radius)
        a = self.np_random.uniform(-math.pi, math.pi)
        self.goal = np.array([obs["odom"][0] + r * math.cos(a), obs["odom"][1] + r * math.sin(a)])
        if options and "goal" in options:
            self.goal = np.asarray(options["goal"], dtype=np.float64)[:2]
        self._steps = 0
        self._last_distance = self._goal_distance(obs)
        return obs, {"goal": self.goal.copy(), "sim_time": self.robot.sim_time()}

    def step(self, action: npt.NDArray[np.float32] | Sequence[float]) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        act = np.clip(np.asarray(action, dtype=np.float32), self.action_space.low, self.action_space.high)
        self.robot.send_velocity(float(act[0]), float(act[1]), self.control_dt, stop=False)
        obs = self._observe()
        self._steps += 1
        if self.reward_fn is not None:
            reward, terminated = self.reward_fn(self, obs, act)
        else:
            reward, terminated = self._goal_reward(obs)
        truncated = not terminated and self._steps >= self.max_episode_steps
        info = {"goal": self.goal.copy(), "distance": self._last_distance, "sim_time": self.robot.sim_time()}
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _goal_reward(self, obs: Obs) -> tuple[float, bool]:
        distance = self._goal_distance(obs)
        reward = (self._last_distance - distance) - 0.01
        self._last_distance = distance
        if distance < self.goal_tolerance:
            return reward + 10.0, True
        if obs["scan"].size and float(obs["scan"].min()) < self.collision_distance:
            return reward - 10.0, True
        return reward, False

    def close(self) -> None:
        if self._own_pool is not None:
            pool, self._own_pool = self._own_pool, None
            pool.close()
        super().close()


def make_vector_env(pool: SimPool, **env_kwargs: Any) -> gym.vector.SyncVectorEnv:
    """A synchronous vector environment with one :class:`SimTwinEnv` per pool member."""
    if len(pool) == 0:
        raise ConfigError("make_vector_env: the pool has no simulators; start it first (with SimPool(...) as pool)")

    def factory(member: PoolMember) -> Callable[[], SimTwinEnv]:
        return lambda: SimTwinEnv(member, **env_kwargs)

    return gym.vector.SyncVectorEnv([factory(m) for m in pool])
