"""The experiment design a run's params describe: which classes are mixed, and how.

- the combinations: (foreground, background) pairs, Table 4 of the paper unless `combinations`
  is given;
- the groups: what is mixed and evaluated with `sources` classes (the combinations for two);
- the unseen pairings: (foreground, background) pairs of the run's classes that are never mixed
  in training, evaluated beside the combinations (notebook 10);
- the ablation beside a run: the other g_blend_share of G (with or without blended conditions).

Functions of the params (any object with `combinations`, `sources`, `unseen_pairs`, `seed`);
:class:`avgas.params.Params` offers them as methods (`p.groups()`), as every caller uses them.
"""

from __future__ import annotations

import itertools

import numpy as np

from avgas import paper

BLEND_ABLATION = (0.0, 0.5)  # g_blend_share's two candidates (avgas.selection): a run and its ablation


def ablation_blend_share(share: float) -> float:
    """The g_blend_share of the ablation the book shows beside a run: G without blended conditions
    (0), or, when the run is that, G with half its two-class scenes conditioned on a blend (0.5)."""
    return BLEND_ABLATION[1] if share == BLEND_ABLATION[0] else BLEND_ABLATION[0]


def ablation_suffix(share: float) -> str:
    """The ablation run's folder suffix (`--sweep g_blend_share=V` names it <name>-g_blend_shareV)."""
    return f"-g_blend_share{ablation_blend_share(share):g}"


UNSEEN_STREAM = 21  # the unseen pairings' own random stream: [seed, 21] (no other draw uses it)


def combination_list(p) -> list[tuple[str, str]]:
    """(foreground, background) pairs in a fixed order."""
    combos = p.combinations if p.combinations is not None else paper.combinations()
    return [(fg, bg) for bg, fgs in combos.items() for fg in fgs]


def groups(p) -> list[tuple[str, ...]]:
    """The evaluated source groups, each (foreground, ..., background) with `sources` classes:
    for 2 the combinations themselves; beyond, a background with every set of sources-1 of its
    foregrounds whose Table 5 prompts differ from each other and from the background's (a
    judge cannot tell two classes with one prompt apart, so such a group could not be scored)."""
    pairs = combination_list(p)
    if p.sources == 2:
        return pairs
    prompts = paper.prompts()
    out = []
    for bg in dict.fromkeys(b for _, b in pairs):
        fgs = [f for f, b in pairs if b == bg]
        for chosen in itertools.combinations(fgs, p.sources - 1):
            words = [prompts.get(c, c) for c in (*chosen, bg)]  # a class without a prompt is its own word
            if len(set(words)) == len(words):
                out.append((*chosen, bg))
    return out


def unseen(p) -> list[tuple[str, str]]:
    """The unseen pairings (two sources only): `unseen_pairs` (foreground, background) pairs of
    the run's classes that are not combinations, each background in turn, the foreground
    drawn with the seed; prompts distinct, so a judge can tell the two apart."""
    if p.sources != 2 or not p.unseen_pairs:
        return []
    pairs = combination_list(p)
    prompts = paper.prompts()
    fgs = sorted({f for f, _ in pairs})
    bgs = list(dict.fromkeys(b for _, b in pairs))
    free = {bg: [f for f in fgs if (f, bg) not in pairs and prompts.get(f, f) != prompts.get(bg, bg)] for bg in bgs}
    rng = np.random.default_rng([p.seed, UNSEEN_STREAM])
    for bg in bgs:
        rng.shuffle(free[bg])
    out = []
    while len(out) < p.unseen_pairs and any(free.values()):
        for bg in bgs:
            if free[bg] and len(out) < p.unseen_pairs:
                out.append((free[bg].pop(0), bg))
    return out
