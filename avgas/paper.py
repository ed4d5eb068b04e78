"""Facts from the AV-GAS paper: its setup, Tables 1-5 and prompts, in avgas/resources/paper-avgas.yaml."""

from __future__ import annotations

import functools

import yaml

from avgas.paths import PACKAGE_DIR

PAPER_YAML = PACKAGE_DIR / "resources" / "paper-avgas.yaml"


@functools.cache
def facts() -> dict:
    return yaml.safe_load(PAPER_YAML.read_text())


def combinations() -> dict[str, list[str]]:
    """Table 4, background -> foregrounds, realistic and unrealistic together."""
    out: dict[str, list[str]] = {}
    for group in facts()["combinations"].values():
        for bg, fgs in group.items():
            out[bg] = list(fgs)
    return out


def background_classes() -> list[str]:
    return list(combinations())


def foreground_classes() -> list[str]:
    return sorted({fg for fgs in combinations().values() for fg in fgs})


def prompts() -> dict[str, str]:
    """Table 5: the single-word detector / CLIP prompt of every class."""
    return dict(facts()["prompts"])


def results() -> dict:
    return facts()["results"]
