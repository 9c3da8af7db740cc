"""Options, ini keys and the simtwin marker: parsing, precedence and the errors users see.

These run pytest in-process (pytester.runpytest) because nothing here starts ROS or a simulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_simtwin.backends.process import check_template, needs_shell
from pytest_simtwin.errors import ConfigError
from pytest_simtwin.runtime import settings as cfg

# A test that prints the effective settings, so the outer test can check what the plugin parsed.
SHOW = """
from pytest_simtwin.plugin.keys import SETTINGS_KEY

def test_show(pytestconfig):
    s = pytestconfig.stash[SETTINGS_KEY]
    print("\\nSETTINGS", s.backend, s.sim.rtf, s.sim.seed, s.reset, s.timeout, s.sim.cmd_vel_type,
          len(s.domain_ids), s.sim.world, s.artifacts)
"""


def _settings_line(result: pytest.RunResult) -> list[str]:
    for line in result.outlines:
        if "SETTINGS " in line:
            return line.split("SETTINGS ", 1)[1].split()
    raise AssertionError("no SETTINGS line in:\n" + "\n".join(result.outlines))


def test_defaults(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    backend, rtf, seed, reset, timeout, cmd, n_ids, world, artifacts = _settings_line(result)
    assert (backend, rtf, seed, reset, timeout, cmd, world) == ("embedded", "1.0", "0", "test", "30.0", "None", "None")
    assert int(n_ids) == 119
    assert artifacts == str(pytester.path / "simtwin-artifacts")


def test_command_line_wins_over_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsimtwin_rtf = 3\nsimtwin_seed = 7\nsimtwin_reset = module\n")
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider", "--simtwin-rtf", "0")
    result.assert_outcomes(passed=1)
    _, rtf, seed, reset, *_ = _settings_line(result)
    assert (rtf, seed, reset) == ("0.0", "7", "module")


def test_ini_world_is_relative_to_the_ini_file(pytester: pytest.Pytester) -> None:
    (pytester.path / "worlds").mkdir()
    world = pytester.path / "worlds" / "w.sdf"
    world.write_text("<sdf version='1.9'><world name='w'/></sdf>")
    pytester.makeini("[pytest]\nsimtwin_world = worlds/w.sdf\n")
    pytester.makepyfile(SHOW)
    result = pytester.runpytest("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert _settings_line(result)[7] == str(world)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--simtwin-backend", "vr"], "invalid choice: 'vr'"),
        (["--simtwin-rtf", "-1"], "--simtwin-rtf: expected a real-time factor >= 0"),
        (["--simtwin-rtf", "fast"], "--simtwin-rtf: expected a number, found 'fast'"),
        (["--simtwin-timeout", "abc"], "--simtwin-timeout: expected a number, found 'abc'"),
        (["--simtwin-seed", "1.5"], "--simtwin-seed: expected a whole number, found '1.5'"),
        (["--simtwin-timeout", "0"], "--simtwin-timeout: expected a positive number"),
        (["--simtwin-domain-range", "5-300"], "--simtwin-domain-range: invalid ROS domain range"),
        (["--simtwin-world", "nowhere.sdf"], "the world file"),
        (["--simtwin-backend", "process"], "needs --simtwin-command"),
        (["--simtwin-backend", "process", "--simtwin-command", "gz sim {wrold}"], "unknown placeholder {wrold}"),
        (["--simtwin-backend", "attach"], "needs --simtwin-attach-domain"),
        (["--simtwin-backend", "attach", "--simtwin-attach-domain", "300"], "expected 0..232"),
        (["--simtwin-reset", "always"], "invalid choice: 'always'"),
    ],
)
def test_bad_options_are_usage_errors(pytester: pytest.Pytester, args: list[str], expected: str) -> None:
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert expected in result.stderr.str(), result.stderr.str()
    assert "test_never" not in result.stdout.str()


def test_bad_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nsimtwin_seed = many\n")
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ini option simtwin_seed" in result.stderr.str()


def test_missing_world_message_says_what_to_do(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never(): pass")
    result = pytester.runpytest("-p", "no:cacheprovider", "--simtwin-world", "worlds/missing.sdf")
    err = result.stderr.str()
    assert str(pytester.path / "worlds" / "missing.sdf") in err and "does not exist" in err


MARKED = """
import pytest
from pytest_simtwin.plugin.keys import OVERRIDES_KEY

pytestmark = pytest.mark.simtwin(world="w.sdf", rtf=2.0)

class TestC:
    pytestmark = pytest.mark.simtwin(seed=3)

    @pytest.mark.simtwin(rtf=0, reset="never")
    def test_closest_wins(self, request):
        o = request.node.stash[OVERRIDES_KEY]
        assert o["rtf"] == 0.0 and o["seed"] == 3 and o["reset"] == "never"
        assert o["world"].name == "w.sdf" and o["world"].is_absolute()

def test_module_only(request):
    assert request.node.stash[OVERRIDES_KEY]["rtf"] == 2.0
"""


def test_marker_merges_module_class_and_function(pytester: pytest.Pytester) -> None:
    pytester.makefile(".sdf", w="<sdf version='1.9'><world name='w'/></sdf>")
    pytester.makepyfile(MARKED)
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("simtwin(wrld='x.sdf')", "unknown keyword 'wrld'"),
        ("simtwin(rtf=-2)", "rtf=...): expected a number >= 0, found -2"),
        ("simtwin(world='missing.sdf')", "world file does not exist"),
        ("simtwin(reset='sometimes')", "expected one of test, module, never"),
        ("simtwin(lockstep='yes')", "expected True or False"),
        ("simtwin('x.sdf')", "keyword arguments only"),
    ],
)
def test_bad_marker_is_a_usage_error_naming_the_test(pytester: pytest.Pytester, marker: str, expected: str) -> None:
    pytester.makepyfile(
        test_m=f"import pytest\n\n@pytest.mark.{marker}\ndef test_marked():\n    pass\n\ndef test_other():\n    pass\n"
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "test_m.py::test_marked" in err and expected in err, err


def test_effective_config_applies_overrides(tmp_path: Path) -> None:
    settings = cfg.Settings(
        backend="embedded", sim=cfg.SimConfig(rtf=1.0), domain_ids=(1,), reset="test", timeout=30.0, artifacts=tmp_path
    )
    sim, reset = cfg.effective_config(settings, {"rtf": 0.0, "reset": "module", "timeout": 5.0})
    assert (sim.rtf, sim.start_timeout, reset) == (0.0, 5.0, "module")
    assert cfg.effective_config(settings, {}) == (settings.sim, "test")
    # Equal configs compare equal: the session restarts only on a real difference.
    assert cfg.effective_config(settings, {"rtf": 1.0})[0] == settings.sim


def test_command_templates() -> None:
    check_template("gz sim -s -r {world} --seed {seed}")
    with pytest.raises(ConfigError, match="unknown placeholder"):
        check_template("run {0}")
    with pytest.raises(ConfigError, match="invalid command template"):
        check_template("run {world")
    assert needs_shell("a {world} & b; wait") and not needs_shell("gz sim -s {world}")


def test_other_modules_can_add_options(pytester: pytest.Pytester) -> None:
    # The documented way: an Option in config.OPTIONS shows up in --help and reads ini + command line.
    pytester.makeconftest(
        "from pytest_simtwin.runtime import settings as cfg\n"
        "def pytest_addoption(parser):\n"
        "    cfg.add_option(parser, cfg.Option('demo-flag', 'a demo', kind='bool', default=False))\n"
    )
    pytester.makepyfile(
        "from pytest_simtwin.runtime import settings as cfg\n"
        "def test_read(pytestconfig):\n"
        "    cfg.OPTIONS.append(cfg.Option('demo-flag', 'a demo', kind='bool', default=False))\n"
        "    try:\n"
        "        assert cfg.get_option(pytestconfig, 'demo-flag') is True\n"
        "    finally:\n"
        "        cfg.OPTIONS.pop()\n"
    )
    pytester.makeini("[pytest]\nsimtwin_demo_flag = true\n")
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
