"""The Gymnasium environment: Gymnasium's own checker passes, seeded rollouts are identical."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gym = pytest.importorskip("gymnasium")

from pytest_simtwin.batch.gym_env import SimTwinEnv, make_vector_env  # noqa: E402
from pytest_simtwin.batch.pool import SimPool  # noqa: E402


def _rollout(env: SimTwinEnv, seed: int, actions: list[tuple[float, float]]) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    seen = [np.concatenate([obs["odom"], obs["scan"]])]
    for a in actions:
        obs, _, terminated, truncated, _ = env.step(np.array(a, dtype=np.float32))
        seen.append(np.concatenate([obs["odom"], obs["scan"]]))
        if terminated or truncated:
            break
    return seen


def test_env_checker_and_seeded_rollouts(tmp_path: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    actions = [(0.3, 0.0)] * 5 + [(0.2, 0.8)] * 5
    with SimPool(2, lockstep=True, artifacts=tmp_path) as pool:
        env_a = SimTwinEnv(pool[0], max_episode_steps=30)
        env_b = SimTwinEnv(pool[1], max_episode_steps=30)
        check_env(env_a, skip_render_check=True)
        assert env_a.observation_space["scan"].shape[0] > 0
        first = _rollout(env_a, 7, actions)
        again = _rollout(env_a, 7, actions)
        other_sim = _rollout(env_b, 7, actions)
        assert len(first) == len(again) == len(other_sim) == len(actions) + 1
        for a, b, c in zip(first, again, other_sim, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        # The robot really moved: this is not a frozen observation.
        assert first[-1][0] - first[0][0] > 0.15
        env_a.close()
        env_b.close()


def test_vector_env_steps_every_member(tmp_path: Path) -> None:
    with SimPool(2, lockstep=True, artifacts=tmp_path) as pool:
        venv = make_vector_env(pool, max_episode_steps=10)
        obs, _ = venv.reset(seed=3)
        assert obs["odom"].shape == (2, 5)
        actions = np.array([[0.4, 0.0], [-0.4, 0.0]], dtype=np.float32)
        for _ in range(5):
            obs, *_ = venv.step(actions)
        assert obs["odom"][0, 0] > 0.1 and obs["odom"][1, 0] < -0.1  # each env drives its own robot
        venv.close()
