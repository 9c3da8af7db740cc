"""Building the simulator images without a registry.

* base: ``debootstrap --variant=minbase <suite> DIR`` then ``tar -C DIR -c . | docker import``
  (any Debian/Ubuntu image with apt works instead: ``--base-image``);
* simulator: ``docker/Dockerfile`` on top, with a wheelhouse of pytest-simtwin and its dependencies
  built on the host (``pip wheel``), so the image build needs no index when the base's Python matches
  the host's; the host's CA bundle is passed in for the cases where pip must reach the index.

Docker is driven through the SDK (imported lazily); the build runs with host networking.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_simtwin.backends.containers.client import connect, sdk
from pytest_simtwin.errors import BackendError

IMAGE_REPO = "pytest-simtwin"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

Log = Callable[[str], None]


def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-simtwin")
    except PackageNotFoundError:
        return "0"


def default_base_image(suite: str = DEFAULT_SUITE) -> str:
    return f"{IMAGE_REPO}/base:{suite}"


def default_sim_image() -> str:
    return f"{IMAGE_REPO}/sim:{package_version()}"


def build_command_hint(image: str | None = None) -> str:
    """The exact command that builds ``image`` here (used in 'image not found' errors)."""
    tag = "" if image in (None, default_sim_image()) else f" --tag {image}"
    return f"simtwin image build --base{tag}   (or: bash scripts/docker-setup.sh in a source checkout)"


def source_root() -> Path | None:
    """The source checkout the package runs from (editable install), else None."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "pyproject.toml").is_file() and (root / "pytest_simtwin").is_dir() else None


def dockerfile_dir() -> Path | None:
    root = source_root()
    return root / "docker" if root is not None and (root / "docker" / "Dockerfile").is_file() else None


def source_hash(root: Path | None = None) -> str:
    """A short hash of the package sources: images are labelled with it to spot stale ones."""
    base = root or Path(__file__).resolve().parents[2]
    digest = hashlib.sha256()
    for path in sorted(base.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".log"):
            digest.update(str(path.relative_to(base)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _print(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _client() -> Any:

    return connect(timeout=600.0)


def image_exists(image: str) -> bool:

    docker = sdk()

    try:
        _client().api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return False
    return True


def image_labels(image: str) -> dict[str, str]:

    docker = sdk()

    try:
        attrs = _client().api.inspect_image(image)
    except docker.errors.ImageNotFound:
        return {}
    return dict((attrs.get("Config") or {}).get("Labels") or {})


def build_base_image(
    tag: str | None = None, *, suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR, log: Log = _print
) -> str:
    """debootstrap a minimal Debian root file system and import it as ``tag``; returns the tag."""
    tag = tag or default_base_image(suite)
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise BackendError(
            "building the base image needs debootstrap, which is not installed. Install it "
            "(apt-get install -y debootstrap), or pass --base-image with any Debian/Ubuntu image you have."
        )
    if os.geteuid() != 0:
        raise BackendError(
            f"debootstrap must run as root (running as uid {os.geteuid()}). Run the build with sudo, or pass "
            f"--base-image with an existing Debian/Ubuntu image."
        )
    client = _client()
    with tempfile.TemporaryDirectory(prefix="simtwin-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"debootstrap --variant=minbase {suite} {rootfs} {mirror}")
        proc = subprocess.run(
            [debootstrap, "--variant=minbase", suite, str(rootfs), mirror],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).splitlines()[-20:]
            raise BackendError(
                f"debootstrap {suite} failed with code {proc.returncode}. Expected a minimal {suite} root file "
                f"system from {mirror}; check the mirror is reachable (or pass --mirror).",
                log_tail=tail,
                log_title="debootstrap output",
            )
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for f in (rootfs / leftover).glob("*"):
                if f.is_file():
                    f.unlink()
        log(f"tar -C {rootfs} -c . | docker import - {tag}")
        repo, _, version = tag.rpartition(":")
        if not repo or "/" in version:
            repo, version = tag, "latest"
        tar = subprocess.Popen(["tar", "--numeric-owner", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            assert tar.stdout is not None
            client.api.import_image_from_stream(
                _chunks(tar.stdout), repository=repo, tag=version, changes=['CMD ["/bin/bash"]']
            )
        finally:
            tar.wait()
        if tar.returncode != 0:
            raise BackendError(f"tar of the debootstrap root file system failed with code {tar.returncode}")
    log(f"built base image {tag}")
    return tag


def _chunks(stream: Any, size: int = 1 << 20) -> Iterator[bytes]:
    while True:
        block = stream.read(size)
        if not block:
            return
        yield block


@dataclass
class BuildContext:
    path: Path
    python_matches: bool


def prepare_context(
    directory: Path, *, source: str | None = None, base_python: str | None = None, log: Log = _print
) -> BuildContext:
    """Fill ``directory`` with the Dockerfile, entrypoint, CA bundle and a wheelhouse."""
    docker_dir = dockerfile_dir()
    if docker_dir is None:
        raise BackendError(
            "docker/Dockerfile was not found next to the installed package. Expected a source checkout of "
            "pytest-simtwin (git clone ...; pip install -e .); run the build from there."
        )
    for name in ("Dockerfile", "entrypoint.sh"):
        shutil.copy2(docker_dir / name, directory / name)
    ca = directory / "ca-certificates.crt"
    if CA_BUNDLE.is_file():
        shutil.copy2(CA_BUNDLE, ca)
    else:
        ca.write_text("")
    wheels = directory / "wheels"
    wheels.mkdir()
    # The xacro extra: robot descriptions in .urdf.xacro are expanded by the simulator itself.
    target = source or (f"{root}[xacro]" if (root := source_root()) else f"pytest-simtwin[xacro]=={package_version()}")
    log(f"pip wheel {target} -> build context (dependencies come from the host's pip configuration)")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), target],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise BackendError(
            f"pip wheel {target} failed with code {proc.returncode}: could not collect pytest-simtwin and its "
            f"dependencies for the image. Check the package index is reachable from this host.",
            log_tail=(proc.stdout + proc.stderr).splitlines()[-20:],
            log_title="pip output",
        )
    # Split the wheelhouse so the image's dependency layer stays cached across source changes.
    (wheels / "deps").mkdir()
    (wheels / "project").mkdir()
    host_python = f"{sys.version_info.major}.{sys.version_info.minor}"
    matches = base_python in (None, host_python)
    for whl in wheels.glob("*.whl"):
        if whl.name.startswith("pytest_simtwin-"):
            whl.rename(wheels / "project" / whl.name)
        elif matches:
            whl.rename(wheels / "deps" / whl.name)
        else:
            whl.unlink()  # built for the host's Python: the image's pip takes the right ones from the index
    return BuildContext(directory, python_matches=matches)


def build_sim_image(
    tag: str | None = None,
    *,
    base_image: str | None = None,
    source: str | None = None,
    base_python: str | None = None,
    log: Log = _print,
) -> str:
    """Build the simulator image on ``base_image``; returns the tag.

    ``base_python``: the base image's ``major.minor`` when known. When it differs from the host's,
    the wheelhouse cannot satisfy every dependency and pip inside the build uses the index.
    """

    docker = sdk()

    tag = tag or default_sim_image()
    base = base_image or default_base_image()
    client = _client()
    try:
        client.api.inspect_image(base)
    except docker.errors.ImageNotFound:
        raise BackendError(
            f"base image {base!r} not found. Build it with: simtwin image build --base (debootstrap + docker "
            f"import, needs root), or pass --base-image with a Debian/Ubuntu image present on this daemon."
        ) from None
    previous: str | None = None
    with contextlib.suppress(docker.errors.ImageNotFound):
        previous = str(client.api.inspect_image(tag)["Id"])
    if base_python is None and base != default_base_image():
        base_python = "unknown"
    with tempfile.TemporaryDirectory(prefix="simtwin-image-") as tmp:
        ctx = prepare_context(Path(tmp), source=source, base_python=base_python, log=log)
        buildargs = {
            "BASE_IMAGE": base,
            "PIP_INDEX_ARGS": "--no-index" if ctx.python_matches else "",
            "PROJECT_DEPS": "--no-deps" if ctx.python_matches else "",
            "SOURCE_HASH": source_hash(),
            "SIMTWIN_VERSION": package_version(),
        }
        log(f"docker build --network host -t {tag} ({', '.join(f'{k}={v}' for k, v in buildargs.items())})")
        lines: list[str] = []
        error: str | None = None
        for chunk in client.api.build(
            path=str(ctx.path),
            tag=tag,
            buildargs=buildargs,
            network_mode="host",
            rm=True,
            forcerm=True,
            decode=True,
        ):
            text = chunk.get("stream") or chunk.get("status") or ""
            if text.strip():
                lines.append(text.rstrip())
                log(text.rstrip())
            if "error" in chunk:
                error = str(chunk["error"])
        if error is not None:
            raise BackendError(
                f"docker build of {tag} on {base} failed: {error.strip()}. Expected a Debian/Ubuntu base with apt "
                f"and network access for apt-get (host networking).",
                log_tail=lines[-30:],
                log_title="docker build output",
            )
    if previous is not None and previous != str(client.api.inspect_image(tag)["Id"]):
        # The old image lost its tag: remove it unless a container still uses it (each is ~800 MB).
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_image(previous)
    log(f"built simulator image {tag}")
    return tag


def image_is_current(image: str | None = None) -> bool:
    """True when ``image`` exists and was built from the current package sources."""
    return image_labels(image or default_sim_image()).get("simtwin.source_hash") == source_hash()
