"""The package layout's rules, read from the imports (see docs/design.md, "Layers").

Each folder of ``pytest_simtwin`` may import only the folders listed for it in :data:`ALLOWED`;
the simulator process (``sim``) only ``errors`` and ``control.protocol``; no import cycles; imports of
our own modules sit at the top of the module except in :data:`LAZY_OK`, where laziness is measured.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "pytest_simtwin"
NAME = "pytest_simtwin"

#: folder -> folders it may import (``errors`` everywhere). Read top to bottom: lower layers first.
ALLOWED: dict[str, set[str]] = {
    "errors": set(),
    "_internal": set(),
    "control.protocol": set(),
    "sim": {"control.protocol"},
    "ros": {"_internal", "control.protocol"},
    "control": {"_internal", "ros"},
    "backends": {"_internal", "ros", "control", "sim"},  # sim: world readers for Gazebo recipes, the fork server
    "results": {"_internal", "ros", "control", "sim"},  # sim: the built-in world's path for provenance
    "runtime": {"_internal", "ros", "control", "backends", "results"},
    "helpers": {"_internal", "ros", "control", "backends", "results", "runtime"},
    "twin": {"_internal", "ros", "control", "backends", "results", "runtime", "helpers"},
    "batch": {"_internal", "ros", "control", "backends", "results", "runtime", "helpers"},
    "cli": {"_internal", "ros", "control", "backends", "results", "runtime", "helpers", "twin", "batch", "sim"},
    "plugin": {"_internal", "ros", "control", "backends", "results", "runtime", "helpers", "twin", "batch", "sim"},
    "": {"*"},  # the package root re-exports the public API (lazily)
}

#: Modules that may import our own modules inside functions, and why (measured in benchmarks/RESULTS.md).
LAZY_OK: dict[str, str] = {
    f"{NAME}": "the public API is re-exported lazily: `import pytest_simtwin` must not pull in rclpy",
    f"{NAME}.plugin.hooks": "every pytest run imports the plugin; the runtime (rclpy, numpy) loads at the first simulation test",
    f"{NAME}.plugin.warmup": "runs in pytest_addoption, before anything else is needed",
    f"{NAME}.runtime.options": "every pytest run checks the options: a recorded-topics list is parsed only when given",
    f"{NAME}.cli": "`simtwin --help` needs the sub-command modules, not what their commands use",
    f"{NAME}.cli.*": "`simtwin --help` imports every sub-command's module for its parser: the work they import waits",
    f"{NAME}.sim.cli": "the simulator's start-up overlaps rclpy discovery with the MuJoCo import in a thread",
    f"{NAME}.sim.forkserver": "the fork server imports the simulator once, before forking",
}


def _lazy_ok(module: str) -> bool:
    return module in LAZY_OK or any(k.endswith(".*") and module.startswith(k[:-1]) for k in LAZY_OK)


def _may_import(src: str, dst: str) -> bool:
    allowed = ALLOWED[src] | ({"control.protocol"} if "control" in ALLOWED[src] or src == "control" else set())
    return dst in ("errors", "__version__", src) or "*" in allowed or dst in allowed


def layer_of(module: str) -> str:
    """The folder a module belongs to (``control.protocol`` is its own layer)."""
    rest = module[len(NAME) + 1 :] if module != NAME else ""
    if rest == "control.protocol" or rest.startswith("control.protocol."):
        return "control.protocol"
    return rest.split(".")[0]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imports(root: Path) -> list[tuple[str, str, int, bool, bool]]:
    """(module, imported module, line, at top level, type-checking only) for every import of ours."""
    found = []
    known = {module_name(p, root) for p in root.rglob("*.py")}
    for path in sorted(root.rglob("*.py")):
        mod = module_name(path, root)
        tree = ast.parse(path.read_text(), str(path))
        typing_only = _type_checking_lines(tree)
        top = {id(n) for n in tree.body}
        top |= {id(c) for n in tree.body if isinstance(n, ast.If | ast.Try) for c in ast.walk(n)}
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
                origin = ".".join([*base[:len(base) - node.level + 1], node.module or ""]) if node.level else node.module
                if origin:
                    targets = [
                        f"{origin}.{a.name}" if f"{origin}.{a.name}" in known or origin == NAME else origin
                        for a in node.names
                    ]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for target in targets:
                if target == NAME or target.startswith(NAME + "."):
                    found.append((mod, target, node.lineno, id(node) in top, node.lineno in typing_only))
    return found


def violations(root: Path) -> list[str]:
    """Every broken rule, as 'file:line: what' lines."""
    problems = []
    graph: dict[str, set[str]] = {}
    for mod, target, line, at_top, typing_only in imports(root):
        src, dst = layer_of(mod), layer_of(target)
        where = f"{mod.replace('.', '/')}.py:{line}"
        if not _may_import(src, dst):
            problems.append(f"{where}: {src or 'root'} may not import {dst} ({target})")
        if not at_top and not typing_only and not _lazy_ok(mod):
            problems.append(f"{where}: import of {target} inside a function (move it to the top, or justify it in LAZY_OK)")
        if not typing_only:
            graph.setdefault(mod, set()).add(target)
    problems += [f"import cycle: {' -> '.join(c)}" for c in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One representative path per strongly connected component with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph and w not in index:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_package_follows_its_layer_rules() -> None:
    assert violations(PACKAGE) == []


def test_the_allowed_layers_form_no_cycle() -> None:
    graph = {k: {d for d in v if d != "*"} for k, v in ALLOWED.items() if k}
    assert cycles(graph) == []


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("sim/world/sdf.py", "from pytest_simtwin.runtime import session", "sim may not import runtime"),
        ("ros/session.py", "from pytest_simtwin.helpers import robot", "ros may not import helpers"),
        ("results/records.py", "from pytest_simtwin.plugin import keys", "results may not import plugin"),
        ("sim/engine/physics.py", "from pytest_simtwin.ros import domains", "sim may not import ros"),
        ("_internal/waiting.py", "from pytest_simtwin.runtime import workers", "_internal may not import runtime"),
    ],
)
def test_a_forbidden_import_is_caught(tmp_path: Path, module: str, line: str, expected: str) -> None:
    copy = tmp_path / NAME
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}\n")
    assert any(expected in p for p in violations(copy)), violations(copy)


def test_a_cycle_and_a_hidden_import_are_caught(tmp_path: Path) -> None:
    copy = tmp_path / NAME
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # _internal.waiting -> errors is fine; errors -> _internal.waiting closes a cycle, inside a function
    errors = copy / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _x() -> None:\n    from pytest_simtwin._internal import waiting\n")
    found = violations(copy)
    assert any("inside a function" in p and "errors.py" in p for p in found), found
    assert any(p.startswith("import cycle:") and f"{NAME}.errors" in p for p in found), found


def test_importing_the_plugin_loads_no_heavy_library() -> None:
    """Every pytest run imports the plugin and configures its reporting: ROS, MuJoCo, numpy, matplotlib and
    docker wait for a simulation test."""
    code = (
        "import sys, pytest_simtwin, pytest_simtwin.plugin.hooks, pytest_simtwin.plugin.reporting\n"
        "heavy = ('rclpy', 'mujoco', 'numpy', 'matplotlib', 'docker', 'lark', 'yaml', 'rosbags')\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ""


def test_a_workers_message_support_skips_the_message_generator() -> None:
    """Every worker loads ROS message type supports; the rosidl code generator (lark, empy: ~18 ms of CPU
    per worker, and lark's sre_parse DeprecationWarnings) is not imported, yet stays importable on demand."""
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from pytest_simtwin.ros.session import quiet_message_support\n"
        "quiet_message_support()\n"
        "from nav_msgs.msg import Odometry\n"
        "Odometry.__class__.__import_type_support__()\n"
        "assert Odometry.__class__._TYPE_SUPPORT is not None\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('lark', 'em', 'rosidl_parser.parser'))))\n"
        "print('rosidl_generator_py.generate_py_impl' in sys.modules)\n"
        "from rosidl_generator_py import generate_py\n"
        "import rosidl_generator_py.generate_py_impl as impl\n"
        "print(generate_py is impl.generate_py)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["", "False", "True"], res.stdout


#: What a pytest run whose tests use nothing of the plugin imports of it (the option table and its checks).
LIGHT_MODULES = {
    NAME,
    f"{NAME}._internal",
    f"{NAME}._internal.statedir",
    f"{NAME}.backends",
    f"{NAME}.backends.registry",
    f"{NAME}.errors",
    f"{NAME}.plugin",
    f"{NAME}.plugin.hooks",
    f"{NAME}.plugin.keys",
    f"{NAME}.plugin.warmup",
    f"{NAME}.ros",
    f"{NAME}.ros.domain_ids",
    f"{NAME}.runtime",
    f"{NAME}.runtime.options",
    f"{NAME}.runtime.spawn",
}


def test_a_run_without_simulation_tests_imports_only_the_option_table(pytester: pytest.Pytester) -> None:
    """Unit-test runs and IDE discovery pay for the options and their checks only: the settings, backends,
    reporting and results load when a collected test uses a fixture or the marker (plugin/hooks.py)."""
    pytester.makeconftest(
        "import sys\n"
        "def pytest_unconfigure(config):\n"
        f"    print('\\nLOADED', ' '.join(sorted(m for m in sys.modules if m.startswith('{NAME}'))))\n"
    )
    pytester.makepyfile("def test_unit():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess("-s", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    loaded = {m for line in result.outlines if line.startswith("LOADED") for m in line.split()[1:]}
    assert f"{NAME}.plugin.hooks" in loaded  # the plugin was really active
    assert loaded <= LIGHT_MODULES, sorted(loaded - LIGHT_MODULES)
    for module in LIGHT_MODULES - {NAME, f"{NAME}.plugin.hooks"}:  # and each light module stays light
        code = f"import sys, {module}\nprint(' '.join(m for m in sys.modules if m.startswith('{NAME}')))\n"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert set(out.split()) <= LIGHT_MODULES, (module, sorted(set(out.split()) - LIGHT_MODULES))


def test_the_default_backend_needs_nothing_at_configure() -> None:
    """The plugin loads only a non-default backend at configure (its option checks, its session start):
    the default one must have neither, or skipping it would skip them."""
    from pytest_simtwin.backends.base import Backend, backend_class
    from pytest_simtwin.backends.registry import DEFAULT_BACKEND

    cls = backend_class(DEFAULT_BACKEND)
    assert cls.check_options.__func__ is Backend.check_options.__func__  # type: ignore[attr-defined]
    assert cls.session_start.__func__ is Backend.session_start.__func__  # type: ignore[attr-defined]


def test_the_plugin_spots_records_by_the_results_attribute() -> None:
    from pytest_simtwin.plugin.keys import REPORT_ATTR
    from pytest_simtwin.results.records import REPORT_ATTR as RESULTS_REPORT_ATTR

    assert REPORT_ATTR == RESULTS_REPORT_ATTR
