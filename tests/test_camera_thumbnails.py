"""A failing camera test's last images: thumbnails in the HTML report, full PNGs in the failure bundle.

A real ``-n 2`` run of a small suite on the sensor test world (a red box 1.5 m ahead of the cameras):
a failing test that looked through the RGB and the depth camera, a failing test without cameras and
a passing camera test. The report is opened in headless Chromium (the DOM after pytest-html's
scripts ran) and the thumbnails decoded as a browser shows them.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pytest_simtwin.results import cameras
from pytest_simtwin.results.dashboard import anchor

WORLD = Path(__file__).parent / "sim" / "data" / "worlds" / "sensors.sdf"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

SUITE = """
    def test_sees_blue(robot):
        img = robot.wait_for_image("front_camera")
        robot.wait_for_depth("front_depth")
        assert (img.array[120, 160] == (0, 0, 255)).all(), "the box ahead is not blue"

    def test_no_camera(robot):
        robot.send_velocity(0.1, 0.0, 0.2)
        assert False, "fails without looking"

    def test_sees_red(robot):
        img = robot.wait_for_image("front_camera")
        assert img.array[120, 160, 0] > 150
"""


class Images(HTMLParser):
    """Every camera thumbnail: (the enclosing block's class, its title, its src, the link around it)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str, str, str]] = []
        self._blocks: list[str] = []
        self._depth: list[int] = []
        self._href = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "div" and ("st-fail" in classes or "simtwin" in classes):
            self._blocks.append(("st-fail" if "st-fail" in classes else "simtwin") + ":" + a.get("data-nodeid", a.get("id", "")))
        if tag == "a":
            self._href = a.get("href", "")
        if tag == "img" and "simtwin-camera" in classes:
            self.found.append((self._blocks[-1] if self._blocks else "", a.get("title", ""), a.get("src", ""), self._href))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._href = ""


def _decode(src: str) -> np.ndarray:
    from PIL import Image

    assert src.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB"))


def test_png_thumbnail_and_depth_rendering() -> None:
    from PIL import Image as PILImage
    from sensor_msgs.msg import Image

    rgb = np.zeros((240, 320, 3), np.uint8)
    rgb[:, :160] = (255, 0, 0)
    small = np.asarray(PILImage.open(io.BytesIO(cameras.png(cameras.thumbnail(rgb)))))
    assert small.shape == (120, 160, 3) and (small[:, :80] == (255, 0, 0)).all() and (small[:, 80:] == 0).all()
    depth = np.full((4, 4), np.inf, np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = 1.0, 3.0, -np.inf
    msg = Image(height=4, width=4, encoding="32FC1", step=16, data=depth.tobytes())
    gray = cameras.displayable(msg)
    assert gray[0, 0, 0] == 255 and gray[0, 1, 0] == 55 and gray[0, 2, 0] == 0 and gray[3, 3, 0] == 0  # near bright


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
def test_failing_camera_test_shows_its_last_images_in_the_report_and_bundle(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_cams=textwrap.dedent(SUITE))
    # in the ini, not on the command line: a path argument would make its project the rootdir
    pytester.makeini(f"[pytest]\nsimtwin_world = {WORLD}\nsimtwin_sensors_off = imu,gps\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", "--html=out/report.html", "--self-contained-html"
    )
    result.assert_outcomes(passed=1, failed=2)
    page = pytester.path / "out" / "report.html"
    assert CHROMIUM is not None
    dom = subprocess.run([CHROMIUM, *_FLAGS, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120, check=True).stdout  # fmt: skip
    parser = Images()
    parser.feed(dom)
    shown: dict[tuple[str, str], tuple[np.ndarray, str]] = {}
    for block, title, src, href in parser.found:
        shown[(block.split(":")[0], title)] = (_decode(src), href)
        assert block.endswith(("test_cams.py::test_sees_blue", anchor("test_cams.py::test_sees_blue"))), block  # only there
    # the failure card (dashboard) and the test's own block both show both cameras, 160 px wide
    assert set(shown) == {(b, t) for b in ("st-fail", "simtwin") for t in ("/front_camera/image", "/front_depth")}
    rgb, href = shown[("st-fail", "/front_camera/image")]
    assert rgb.shape == (120, 160, 3)
    r, g, b = (int(v) for v in rgb[60, 80])
    assert r > 150 and g < 60 and b < 60, "the thumbnail shows the red box at the image centre"
    depth, _ = shown[("st-fail", "/front_depth")]
    assert depth.shape == (120, 160, 3) and depth[60, 80, 0] > 0 and depth[5, 80, 0] == 0  # box read, sky out of range
    # the card links the thumbnail to the full image in the failure bundle
    full = page.parent / href
    from PIL import Image

    assert full.is_file() and full.name == "camera-front_camera-image.png"
    assert Image.open(full).size == (320, 240)
    assert Image.open(full.parent / "camera-front_depth.png").size == (320, 240)
    bundles = pytester.path / "simtwin-artifacts" / "failures"
    no_camera = [p for p in bundles.iterdir() if "test_no_camera" in p.name]
    assert len(no_camera) == 1 and not list(no_camera[0].glob("camera-*.png"))  # nothing it did not look at
