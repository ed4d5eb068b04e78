"""The data folder's layout, shared by the synthetic world that writes one and the data module that
reads one (VGGSound's or the world's): the splits, the image files' suffixes, and the error raised
when a folder cannot serve a run (a ValueError: one line at the command line, not a traceback)."""

from __future__ import annotations

SR = 16_000  # Hz, mono: Sound2Scene's rate, never resampled
SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".png", ".jpeg")


class DataError(ValueError):
    """The data folder cannot serve this run (missing folder, too few clips of a class, ...)."""
