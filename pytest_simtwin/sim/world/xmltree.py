"""A small XML tree that remembers file and line of every element (ElementTree drops line numbers).

``*.xacro`` files (``.urdf.xacro``, ``.sdf.xacro``) are expanded with their arguments' defaults first, as
the launch files that run ``xacro`` on them without arguments do; their lines are then those of the
``xacro FILE`` command's output, and messages say so.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterator
from pathlib import Path

from pytest_simtwin.errors import ModelError


class Element:
    """An XML element: ``tag``, ``attrib``, ``text`` (stripped), ``children``, ``file``, ``line``."""

    __slots__ = ("attrib", "children", "file", "line", "parent", "tag", "text")

    def __init__(self, tag: str, attrib: dict[str, str], file: Path | None, line: int) -> None:
        self.tag = tag
        self.attrib = attrib
        self.file = file
        self.line = line
        self.text = ""
        self.children: list[Element] = []
        self.parent: Element | None = None

    @property
    def where(self) -> str:
        """``file:line`` for messages."""
        if self.file is not None and is_xacro(self.file):
            return f"{self.file}:{self.line} (line of `xacro {self.file.name}`'s output)"
        return f"{self.file or '<string>'}:{self.line}"

    def find(self, tag: str) -> Element | None:
        for child in self.children:
            if child.tag == tag:
                return child
        return None

    def findall(self, tag: str) -> list[Element]:
        return [c for c in self.children if c.tag == tag]

    def path(self, *tags: str) -> Element | None:
        """Follow a chain of child tags, e.g. ``path("lidar", "scan", "horizontal")``."""
        node: Element | None = self
        for tag in tags:
            if node is None:
                return None
            node = node.find(tag)
        return node

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def child_text(self, tag: str) -> str | None:
        child = self.find(tag)
        return child.text if child is not None else None

    def __repr__(self) -> str:
        return f"<{self.tag} at {self.where}>"


_COMMENT = re.compile(rb"<!--(.*?)-->", re.DOTALL)


def _lenient(data: bytes) -> bytes:
    """tinyxml2 (which sdformat uses) accepts ``--`` inside comments; expat does not. Same length and lines."""
    if b"--" not in data:
        return data

    def clean(match: re.Match[bytes]) -> bytes:
        body = match.group(1).replace(b"--", b"- ")
        return b"<!--" + (body[:-1] + b" " if body.endswith(b"-") else body) + b"-->"  # "--->" too

    return _COMMENT.sub(clean, data)


def parse_string(text: str | bytes, file: Path | None = None) -> Element:
    """Parse XML text; a syntax error becomes a ModelError with file and line."""
    text = _lenient(text.encode() if isinstance(text, str) else text)
    parser = xml.parsers.expat.ParserCreate()
    stack: list[Element] = []
    root: list[Element] = []
    texts: list[list[str]] = []

    def start(tag: str, attrib: dict[str, str]) -> None:
        element = Element(tag, attrib, file, parser.CurrentLineNumber)
        if stack:
            element.parent = stack[-1]
            stack[-1].children.append(element)
        else:
            root.append(element)
        stack.append(element)
        texts.append([])

    def end(tag: str) -> None:
        element = stack.pop()
        element.text = "".join(texts.pop()).strip()

    def data(chunk: str) -> None:
        if texts:
            texts[-1].append(chunk)

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = data
    try:
        parser.Parse(text, True)
    except xml.parsers.expat.ExpatError as exc:
        raise ModelError(
            f"{file or '<string>'}:{exc.lineno}: malformed XML ({xml.parsers.expat.errors.messages[exc.code]} "
            f"at column {exc.offset}); expected a well-formed SDF/URDF document. Fix the file (e.g. check it "
            f"with `xmllint --noout {file or 'FILE'}`)."
        ) from None
    if not root:
        raise ModelError(f"{file or '<string>'}: empty XML document; expected an SDF or URDF description.")
    return root[0]


def is_xacro(path: Path) -> bool:
    return path.name.lower().endswith(".xacro")


def expand_xacro(path: Path) -> str:
    """Run xacro on ``path`` with its arguments' defaults; errors name the file and what to install or fix."""
    try:
        import xacro
    except ImportError:
        raise ModelError(
            f"{path} is a xacro file but the `xacro` package is not installed; install it with "
            "`pip install xacro` (or pytest-simtwin[xacro]), or pass the expanded URDF/SDF."
        ) from None
    try:
        document = xacro.process_file(str(path))
    except Exception as exc:  # xacro raises its own XacroException, NameError, ... on bad input
        raise ModelError(
            f"{path}: xacro failed: {exc}. Expected a xacro file that expands on its own; $(find pkg) needs the "
            "package on AMENT_PREFIX_PATH (source your workspace) and arguments need defaults."
        ) from None
    return str(document.toprettyxml(indent="  "))  # as the xacro command prints it: the lines users can look up


def parse_file(path: Path) -> Element:
    """Read and parse ``path`` (xacro-expanded if it is a ``.xacro``); a missing or unreadable file is a
    ModelError."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(
            f"model file {path} does not exist; expected an SDF (.sdf/.world), URDF (.urdf) or "
            f"xacro (.urdf.xacro/.sdf.xacro) file. Check the path (relative paths are relative to {Path.cwd()})."
        ) from None
    except IsADirectoryError:
        raise ModelError(f"{path} is a directory; expected an SDF or URDF file inside it.") from None
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}; check its permissions.") from None
    if is_xacro(path):
        return parse_string(expand_xacro(path), path)
    return parse_string(data, path)
