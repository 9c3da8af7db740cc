"""pytest entry point (``pytest11``): wires options, markers, hooks and fixtures; the work lives elsewhere."""

from __future__ import annotations
