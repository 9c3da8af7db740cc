"""The last camera images of a failing test: thumbnails for the report, full PNGs for the bundle.

Images are the ones the test process received (``robot.wait_for_image`` and any subscription of the
test's ROS session) since the test's call began, newest per topic. Colour images are shown as they are;
depth images (32FC1 metres, 16UC1 millimetres) as grayscale, near bright, far dark, out of range
(REP-117 +/-inf, NaN) black. PNGs are written with zlib (no imaging library needed).
"""

from __future__ import annotations

import base64
import html
import struct
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_simtwin.errors import ConfigError
from pytest_simtwin.results.records import TestRecord

if TYPE_CHECKING:  # numpy loads when an image is decoded: the plugin imports this module at start-up
    import numpy as np
    import numpy.typing as npt

ENCODINGS = {"rgb8": ("uint8", 3), "bgr8": ("uint8", 3), "mono8": ("uint8", 1), "32FC1": ("float32", 1),
             "16UC1": ("uint16", 1), "rgba8": ("uint8", 4), "bgra8": ("uint8", 4)}  # fmt: skip
IMAGE_TYPE = "sensor_msgs.msg._image.Image"
THUMB_WIDTH = 160


def image_array(msg: Any) -> npt.NDArray[Any]:
    """A sensor_msgs/Image as a numpy array (no copy of the pixel data beyond the message's)."""
    import numpy as np

    if msg.encoding not in ENCODINGS:
        raise ConfigError(f"image encoding {msg.encoding!r} is not supported; expected one of {', '.join(ENCODINGS)}")
    dtype, channels = ENCODINGS[msg.encoding]
    data = np.frombuffer(bytes(msg.data), dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    rows = data.reshape(msg.height, msg.step // itemsize)[:, : msg.width * channels]
    return rows.reshape(msg.height, msg.width, channels) if channels > 1 else rows.reshape(msg.height, msg.width)


def displayable(msg: Any) -> npt.NDArray[np.uint8]:
    """(h, w, 3) uint8 RGB of an Image message: depth as grayscale (near bright), colour as RGB."""
    import numpy as np

    img = image_array(msg)
    if msg.encoding in ("32FC1", "16UC1"):
        depth = img.astype(np.float64) / (1000.0 if msg.encoding == "16UC1" else 1.0)
        valid = np.isfinite(depth) & (depth > 0)
        gray = np.zeros(depth.shape, dtype=np.uint8)
        if valid.any():
            near, far = float(depth[valid].min()), float(depth[valid].max())
            span = far - near if far > near else 1.0
            gray[valid] = (255 - 200 * (depth[valid] - near) / span).astype(np.uint8)  # 255 .. 55: black = no reading
        return np.repeat(gray[..., None], 3, axis=2)
    if img.ndim == 2:
        return np.repeat(img[..., None], 3, axis=2)
    if msg.encoding.startswith("bgr"):
        img = img[..., 2::-1]
    return np.ascontiguousarray(img[..., :3])


def png(rgb: npt.NDArray[np.uint8]) -> bytes:
    """PNG bytes of an (h, w, 3) uint8 image (8-bit RGB, no filter)."""
    import numpy as np

    h, w = rgb.shape[:2]
    raw = b"".join(b"\x00" + np.ascontiguousarray(rgb[row]).tobytes() for row in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def thumbnail(rgb: npt.NDArray[np.uint8], width: int = THUMB_WIDTH) -> npt.NDArray[np.uint8]:
    """Shrunk to ``width`` pixels (aspect kept; box-averaged), or as it is when not wider."""
    import numpy as np

    h, w = rgb.shape[:2]
    if w <= width:
        return rgb
    height = max(1, round(h * width / w))
    rows = (np.arange(height + 1) * h / height).astype(int)
    cols = (np.arange(width + 1) * w / width).astype(int)
    summed = np.add.reduceat(np.add.reduceat(rgb.astype(np.float64), rows[:-1], axis=0), cols[:-1], axis=1)
    counts = np.outer(np.diff(rows), np.diff(cols))[..., None]
    return np.clip(summed / counts + 0.5, 0, 255).astype(np.uint8)


def last_images(ros: Any, since: float) -> dict[str, Any]:
    """The newest sensor_msgs/Image per topic that ``ros`` (a RosSession) received after ``since``
    (time.monotonic())."""
    out: dict[str, Any] = {}
    for buf in ros.buffers():
        if f"{buf.msg_type.__module__}.{buf.msg_type.__name__}" != IMAGE_TYPE:
            continue
        got = buf.since(since)
        if got:
            out[buf.topic] = got[-1].msg
    return out


def capture(rec: TestRecord, images: Mapping[str, Any]) -> dict[str, bytes]:
    """Put each image's thumbnail into ``rec.cameras`` (base64 PNG by topic); returns the full PNGs."""
    full: dict[str, bytes] = {}
    for topic, msg in sorted(images.items()):
        try:
            rgb = displayable(msg)
        except (ConfigError, ValueError):
            continue  # an encoding we cannot show: the recording still has it
        full[topic] = png(rgb)
        rec.cameras[topic] = base64.b64encode(png(thumbnail(rgb))).decode("ascii")
    return full


def file_name(topic: str) -> str:
    """The bundle file of a topic's image: ``camera-front_camera-image.png``."""
    return "camera-" + "".join(c if c.isalnum() or c in "._" else "-" for c in topic.strip("/")) + ".png"


def cameras_html(rec: TestRecord, link: Mapping[str, str] | None = None) -> str:
    """The thumbnails of ``rec.cameras`` (each linked to ``link[topic]``, the full PNG, when given)."""
    if not rec.cameras:
        return ""
    parts = ['<div class="simtwin-cameras" style="margin:4px 0"><div style="color:#555">last camera images</div>']
    for topic, data in sorted(rec.cameras.items()):
        img = (f'<img class="simtwin-camera" alt="{html.escape(topic)}" title="{html.escape(topic)}" '
               f'style="border:1px solid #ccc;margin:2px;vertical-align:top" src="data:image/png;base64,{data}"/>')  # fmt: skip
        href = (link or {}).get(topic)
        if href:
            img = f'<a href="{html.escape(href, quote=True)}">{img}</a>'
        parts.append(f'<figure style="display:inline-block;margin:2px">{img}<figcaption>'
                     f"<code>{html.escape(topic)}</code></figcaption></figure>")  # fmt: skip
    parts.append("</div>")
    return "".join(parts)


def bundle_hrefs(rec: TestRecord, report_dir: Path | None, rel: Any) -> dict[str, str]:
    """topic -> href of the full image in the failure bundle (``rel(path, report_dir)``), for files that exist."""
    folder = rec.artifacts.get("bundle")
    if not folder:
        return {}
    files = {topic: Path(folder) / file_name(topic) for topic in rec.cameras}
    return {topic: rel(path, report_dir) for topic, path in files.items() if path.is_file()}
