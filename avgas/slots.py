"""K sources per mixture: how a tuple names its sources, the separator's slots and the tasks.

The paper mixes two sources, a foreground and a background, and reads the separator's first
half as the foreground and its second as the background. With `sources: K` a mixture holds one
background and K-1 foregrounds of that background (`Params.groups`); the slots keep the paper's
order, foregrounds first and the background last:

    K = 2:  fg, bg            slots foreground, background          (the paper)
    K = 3:  fg, fg2, bg       slots foreground, foreground_2, background

A tuple table has the columns ``<prefix>_label`` and ``<prefix>_stem`` of every source, so K = 2
tables are exactly the paper's (fg_label, bg_label, fg_stem, bg_stem).
"""

from __future__ import annotations

import pandas as pd


def prefixes(k: int) -> list[str]:
    """Column prefixes of the K sources, in slot order: fg, fg2, ..., bg."""
    if k < 2:
        raise ValueError(f"a mixture has at least 2 sources, not {k}")
    return ["fg"] + [f"fg{j}" for j in range(2, k)] + ["bg"]


def slot_names(k: int) -> list[str]:
    """The separator's slots in order: foreground, foreground_2, ..., background."""
    return ["foreground"] + [f"foreground_{j}" for j in range(2, k)] + ["background"]


def tasks(k: int) -> list[str]:
    """The evaluated tasks: the mixed image, then one separated image per slot."""
    return ["mixed"] + [f"separated_{s}" for s in slot_names(k)]


def separated_tasks(k: int) -> list[str]:
    return tasks(k)[1:]


def count(tuples: pd.DataFrame) -> int:
    """K of a tuple table (the number of *_stem columns)."""
    return sum(c.endswith("_stem") for c in tuples.columns)


def stem_columns(tuples_or_k) -> list[str]:
    k = tuples_or_k if isinstance(tuples_or_k, int) else count(tuples_or_k)
    return [f"{x}_stem" for x in prefixes(k)]


def label_columns(tuples_or_k) -> list[str]:
    k = tuples_or_k if isinstance(tuples_or_k, int) else count(tuples_or_k)
    return [f"{x}_label" for x in prefixes(k)]


def labels(tuples: pd.DataFrame) -> list[tuple[str, ...]]:
    """Per tuple, its K class names in slot order."""
    return list(zip(*(tuples[c] for c in label_columns(tuples))))


def name(group) -> str:
    """How a group is written in tables: 'dog barking + hail', 'fg + fg2 + bg' for K = 3."""
    return " + ".join(group)


def recall_name(k: int, task: str) -> str:
    """R@K* for a mixed image (all K classes in CLIP's top K), R@1 for a separated one."""
    return f"R@{k}*" if task == "mixed" else "R@1"


def crs_name(k: int) -> str:
    """CRS for two sources, as the paper writes it; CRS_K beyond (Eq. 5 with N = K)."""
    return "CRS" if k == 2 else f"CRS_{k}"
