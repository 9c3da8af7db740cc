"""Build a ROS 2 message package that PyPI does not ship (tf2_msgs, ros_gz_interfaces) from its ``.msg``
files (vendored under ``pytest_simtwin/data/msgs``), at first use.

The ``ros-kilted-*`` wheels bring rosidl's generators (with their templates), the message packages'
headers, libraries and type descriptions (``<venv>/include``, ``<venv>/lib``, ``<venv>/share``), but
neither tf2_msgs nor ros_gz_interfaces. This runs what ``rosidl_generate_interfaces()`` runs in a colcon build: rosidl_adapter
(.msg -> .idl), the type-hash, C, C type support (introspection, Fast DDS, dispatch) and Python
generators, then compiles the generated C with the system C compiler (``cc``) into a package folder
under the cache directory, which is then put on ``sys.path``. Keyed by the .msg contents and the
rosidl version, so it builds once per machine (~10-20 s).

The generators run in a child Python process (:func:`_generate`): they import ``lark`` (through
rosidl_parser), which imports the deprecated ``sre_parse``/``sre_constants``. In the process that asked
for the package (a user's test process) that is two DeprecationWarnings in their summary, an error under
``-W error``; the child's output is shown only when it fails.
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from pytest_simtwin.errors import SimulatorError

log = logging.getLogger("simtwin.sim")

DATA = Path(__file__).resolve().parents[1] / "data" / "msgs"
TYPESUPPORTS = ("rosidl_typesupport_fastrtps_c", "rosidl_typesupport_introspection_c")


def _prefix() -> Path:
    """The install prefix of the ros-kilted wheels (the venv): holds include/, lib/, share/."""
    import rclpy

    here = Path(rclpy.__file__).resolve()
    for parent in here.parents:
        if (parent / "share" / "geometry_msgs").is_dir() and (parent / "include").is_dir():
            return parent
    return Path(sys.prefix)


def cache_dir() -> Path:
    base = os.environ.get("SIMTWIN_MSG_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "pytest-simtwin", "msgs"
    )
    return Path(base)


def _key(package: str, prefix: Path) -> str:
    h = hashlib.sha256()
    for f in sorted((DATA / package).rglob("*.msg")):
        h.update(f.name.encode() + f.read_bytes())
    h.update(str(prefix).encode())
    from importlib.metadata import version

    h.update(version("ros-rosidl-generator-py").encode())
    return h.hexdigest()[:16]


def ensure(package: str, deps: tuple[str, ...] = ("geometry_msgs", "std_msgs", "builtin_interfaces")) -> None:
    """Make ``import <package>`` work: an installed one, else a cached build, else build it now."""
    try:
        importlib.import_module(package)
        return
    except ImportError:
        pass
    prefix = _prefix()
    target = cache_dir() / f"{package}-{_key(package, prefix)}"
    if not (target / package / "__init__.py").exists():
        _build(package, deps, prefix, target)
    sys.path.insert(0, str(target))
    # rosidl's type support dispatch dlopens the package's libraries by bare name; the dynamic loader
    # reads LD_LIBRARY_PATH only at process start, but finds libraries already loaded (by soname).
    for name in ("rosidl_generator_c", "rosidl_typesupport_introspection_c", "rosidl_typesupport_fastrtps_c",
                 "rosidl_typesupport_c", "rosidl_generator_py"):  # fmt: skip
        ctypes.CDLL(str(target / "lib" / f"lib{package}__{name}.so"), mode=ctypes.RTLD_GLOBAL)
    os.environ["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(target / "lib"), os.environ.get("LD_LIBRARY_PATH", "")) if p
    )  # child processes
    importlib.import_module(package)


def import_type(module: str, cls: str) -> bool:
    """Load a message class's C type support now (True on success)."""
    try:
        getattr(importlib.import_module(module), cls).__class__.__import_type_support__()
    except (ImportError, AttributeError):
        return False
    return True


def _generate(package: str, deps: tuple[str, ...], prefix: Path, work: Path) -> Path:
    """:func:`_run_generators` in a child process: rosidl's generators and their imports (lark, empy)
    stay out of this one, and so do the warnings and the lines they print."""
    root = str(Path(__file__).resolve().parents[2])  # this package, however the caller found it
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p))
    code = "import sys; from pytest_simtwin.sim.msgbuild import _run_generators_main; _run_generators_main(sys.argv[1:])"
    res = subprocess.run([sys.executable, "-c", code, package, ",".join(deps), str(prefix), str(work)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    if res.returncode != 0:
        raise SimulatorError(f"generating the {package} message package failed (rosidl generators):\n{res.stderr[-3000:]}")
    return work / "gen"


def _run_generators_main(argv: list[str]) -> None:
    """The child of :func:`_generate`: ``PACKAGE DEP,DEP PREFIX WORK``."""
    package, deps, prefix, work = argv
    _run_generators(package, tuple(d for d in deps.split(",") if d), Path(prefix), Path(work))


def _run_generators(package: str, deps: tuple[str, ...], prefix: Path, work: Path) -> Path:
    from rosidl_adapter.msg import convert_msg_to_idl
    from rosidl_generator_c import generate_c
    from rosidl_generator_py.generate_py_impl import generate_py
    from rosidl_generator_type_description import generate_type_hash
    from rosidl_typesupport_c import generate_c as generate_dispatch_c
    from rosidl_typesupport_fastrtps_c import generate_typesupport_fastrtps_c
    from rosidl_typesupport_introspection_c import generate_c as generate_introspection_c

    share = prefix / "share"
    src = work / "src" / package
    shutil.copytree(DATA / package, src)
    idl_dir = work / "idl"
    idl_tuples = []
    for msg in sorted((src / "msg").glob("*.msg")):
        idl = convert_msg_to_idl(src, package, msg.relative_to(src), idl_dir / package / "msg")
        idl_tuples.append(f"{idl_dir / package}:{idl.relative_to(idl_dir / package)}")
    gen = work / "gen"
    includes = [f"{d}:{share / d}" for d in deps]

    def args(name: str, output: Path, template: str | None, **extra: object) -> str:
        data: dict[str, object] = {
            "package_name": package,
            "output_dir": str(output),
            "idl_tuples": idl_tuples,
            "target_dependencies": [],
            "ros_interface_dependencies": [],
            "ros_interface_files": [str(m) for m in sorted((src / "msg").glob("*.msg"))],
            **extra,
        }
        if template:
            data["template_dir"] = str(share / template / "resource")
        path = work / f"{name}.json"
        path.write_text(json.dumps(data))
        return str(path)

    generate_type_hash(args("hash", gen / "type_description", None, include_paths=includes))
    descriptions = [
        f"{t.split(':', 1)[1]}:{gen / 'type_description' / t.split(':', 1)[1].replace('.idl', '.json')}"
        for t in idl_tuples
    ]
    generate_c(args("c", gen / "c" / package, "rosidl_generator_c", type_description_tuples=descriptions))
    generate_typesupport_fastrtps_c(args("fastrtps", gen / "fastrtps_c" / package, "rosidl_typesupport_fastrtps_c"))
    generate_introspection_c(
        args("introspection", gen / "introspection_c" / package, "rosidl_typesupport_introspection_c")
    )
    generate_dispatch_c(args("dispatch", gen / "typesupport_c" / package, "rosidl_typesupport_c"), list(TYPESUPPORTS))
    generate_py(args("py", gen / "py" / package, "rosidl_generator_py"), ["rosidl_typesupport_c"])
    # the visibility headers that rosidl's CMake configures from templates
    for kind, folder in (("rosidl_generator_c", "c"), ("rosidl_typesupport_fastrtps_c", "fastrtps_c"),
                         ("rosidl_typesupport_introspection_c", "introspection_c")):  # fmt: skip
        text = (share / kind / "resource" / f"{kind}__visibility_control.h.in").read_text()
        text = text.replace("@PROJECT_NAME_UPPER@", package.upper()).replace("@PROJECT_NAME@", package)
        (gen / folder / package / "msg" / f"{kind}__visibility_control.h").write_text(text)
    return gen


def _compile(compiler: str, sources: list[Path], output: Path, includes: list[Path], libs: list[str],
             libdirs: list[Path]) -> None:  # fmt: skip
    """One shared object; rpaths: the wheels' lib/ and ours ($ORIGIN for lib/, $ORIGIN/../lib for the package)."""
    cmd = [compiler, "-shared", "-fPIC", "-O1", f"-Wl,-soname,{output.name}", "-o", str(output)]
    if compiler == "c++":
        cmd.append("-std=c++17")
    cmd += [str(f) for f in sources] + [f"-I{i}" for i in includes] + [f"-L{d}" for d in libdirs]
    cmd += [f"-Wl,-rpath,{d}" for d in libdirs] + ["-Wl,-rpath,$ORIGIN", "-Wl,-rpath,$ORIGIN/../lib"]
    cmd += [f"-l{lib}" for lib in libs]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise SimulatorError(f"building {output.name} failed ({compiler}):\n{res.stderr[-3000:]}")


RUNTIME_INCLUDES = (
    "rosidl_runtime_c", "rosidl_typesupport_interface", "rcutils", "rosidl_typesupport_c",
    "rosidl_typesupport_introspection_c", "rosidl_typesupport_fastrtps_c", "rosidl_dynamic_typesupport", "fastcdr",
    "rmw", "rosidl_typesupport_fastrtps_cpp", "rosidl_runtime_cpp", "rcpputils", "rosidl_generator_py",
)  # fmt: skip


def _build(package: str, deps: tuple[str, ...], prefix: Path, target: Path) -> None:
    if shutil.which("cc") is None or shutil.which("c++") is None:
        raise SimulatorError(
            f"{package} is not installed and cannot be built: no C/C++ compiler (cc, c++). Install one "
            "(apt-get install g++) or the ROS package."
        )
    log.info("building the %s message package into %s (first use)", package, target)
    with tempfile.TemporaryDirectory(prefix=f"simtwin-{package}-") as tmp:
        work = Path(tmp)
        gen = _generate(package, deps, prefix, work)
        lib = work / "out" / "lib"
        lib.mkdir(parents=True)
        inc = prefix / "include"
        import numpy

        site = Path(importlib.import_module("rclpy").__file__ or "").resolve().parents[1]
        includes = [gen / "c", gen / "fastrtps_c", gen / "introspection_c", gen / "typesupport_c"]
        includes += [inc / d for d in (*deps, *RUNTIME_INCLUDES)] + [inc]
        includes += [Path(sysconfig.get_paths()["include"]), Path(numpy.get_include()), site]
        dirs = [prefix / "lib", lib]
        base = ["rosidl_runtime_c", "rcutils"]
        c_lib = f"{package}__rosidl_generator_c"

        def of(kind: str) -> list[str]:
            return [f"{d}__{kind}" for d in deps]

        def files(folder: str, *patterns: str) -> list[Path]:
            return sorted(f for pattern in patterns for f in (gen / folder).rglob(pattern))

        _compile("cc", files("c", "*.c"), lib / f"lib{c_lib}.so", includes, of("rosidl_generator_c") + base, dirs)
        _compile("cc", files("introspection_c", "*.c"), lib / f"lib{package}__rosidl_typesupport_introspection_c.so",
                 includes, [c_lib, *base, *of("rosidl_typesupport_introspection_c")], dirs)  # fmt: skip
        # the Fast DDS C type support is generated as C++
        _compile("c++", files("fastrtps_c", "*.cpp"), lib / f"lib{package}__rosidl_typesupport_fastrtps_c.so",
                 includes, [c_lib, *base, "fastcdr", "rosidl_typesupport_fastrtps_c", "rosidl_dynamic_typesupport",
                            "rmw", *of("rosidl_typesupport_fastrtps_c")], dirs)  # fmt: skip
        _compile("c++", files("typesupport_c", "*.c", "*.cpp"), lib / f"lib{package}__rosidl_typesupport_c.so",
                 includes, [c_lib, *base, "rosidl_typesupport_c", "rcpputils"], dirs)  # fmt: skip
        # Python: the generated package, its conversion library and the type support extension
        out_pkg = work / "out" / package
        shutil.copytree(gen / "py" / package, out_pkg)
        (out_pkg / "__init__.py").touch()  # written by rosidl's CMake, not by the generator
        _compile("cc", sorted(out_pkg.rglob("_*_s.c")), lib / f"lib{package}__rosidl_generator_py.so", includes,
                 [c_lib, *base, *of("rosidl_generator_py"), *of("rosidl_generator_c")], dirs)  # fmt: skip
        suffix = sysconfig.get_config_var("EXT_SUFFIX")
        for entry in sorted(out_pkg.glob("_*.ep.*.c")):
            ts = entry.name.split(".ep.")[1][: -len(".c")]
            _compile("cc", [entry], out_pkg / f"{package}_s__{ts}{suffix}", includes,
                     [f"{package}__rosidl_generator_py", f"{package}__{ts}", c_lib, *base], dirs)  # fmt: skip
        # Another process (a second pytest-xdist worker) may build the same at once: the first rename wins.
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        shutil.copytree(work / "out", staging, dirs_exist_ok=True)
        try:
            staging.rename(target)
        except OSError:
            if not (target / package / "__init__.py").exists():
                raise
            shutil.rmtree(staging, ignore_errors=True)
