"""Building a message package at first use (sim/msgbuild.py) leaves nothing in the user's warnings summary:
rosidl's generators import lark, which imports the deprecated sre_parse/sre_constants (two
DeprecationWarnings, errors under ``-W error``). The user's own warnings still show."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import warnings

from pytest_simtwin.sim import msgbuild


def test_builds_tf2_msgs_at_first_use():
    msgbuild.ensure("tf2_msgs")
    from tf2_msgs.msg import TFMessage

    assert TFMessage().transforms == []


def test_my_own_deprecation_still_shows():
    warnings.warn("my own deprecation", DeprecationWarning)
"""


@pytest.mark.parametrize("strict", [False, True], ids=["default-filters", "W-error"])
def test_a_first_build_warns_nothing_of_its_own(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, strict: bool
) -> None:
    cache = tmp_path / "msgs"  # empty: this run builds the package
    monkeypatch.setenv("SIMTWIN_MSG_CACHE", str(cache))
    pytester.makepyfile(test_user=USER_TESTS)
    args = ["-p", "no:cacheprovider", "-rA"]
    if strict:
        args += ["-W", "error::DeprecationWarning", "-k", "first_use"]
    result = pytester.runpytest_subprocess(*args, timeout=300)
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1 if strict else 2)
    assert [p.name.split("-")[0] for p in cache.iterdir() if not p.name.startswith(".")] == ["tf2_msgs"], "built here"
    assert "sre_parse" not in out and "sre_constants" not in out and "lark" not in out, out
    if not strict:  # the user's warnings are not filtered: theirs is the only one in the summary
        assert "test_user.py:14: DeprecationWarning: my own deprecation" in out, out
        assert "1 warning" in out, out
