"""Leaf helpers with no simulation knowledge: the one polling wait, file names, frames hidden from tracebacks.

Owns generic utilities used across the package. May import only :mod:`pytest_simtwin.errors`.
"""
