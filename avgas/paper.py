"""Facts from the AV-GAS paper: its setup, Tables 1-5 and prompts, in avgas/resources/paper-avgas.yaml."""

from __future__ import annotations

import functools
from pathlib import Path

import yaml

# beside this file, not through avgas.paths: params imports paper while paths is still loading
PAPER_YAML = Path(__file__).resolve().parent / "resources" / "paper-avgas.yaml"


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


KINDS = ("realistic", "unrealistic")  # Table 4's two groups (Sec. 4.1: both are trained on)


def kind_of(combination: str) -> str:
    """'realistic' or 'unrealistic' (Table 4) of a combination written 'foreground(s) + background':
    the kind is its background's group, so the 5 combinations over underwater bubbling are the
    unrealistic ones. A background outside Table 4 (a custom `combinations`) counts as realistic."""
    background = combination.split(" + ")[-1]
    return "unrealistic" if background in facts()["combinations"]["unrealistic"] else "realistic"


def background_classes() -> list[str]:
    return list(combinations())


def foreground_classes() -> list[str]:
    return sorted({fg for fgs in combinations().values() for fg in fgs})


def prompts() -> dict[str, str]:
    """Table 5: the single-word detector / CLIP prompt of every class."""
    return dict(facts()["prompts"])


def results() -> dict:
    return facts()["results"]
