"""Every judge checked both ways (recall, and the false success that would inflate Table 1), the
trust rule, the words each image must show, and the real run's check on true single images."""

from __future__ import annotations

import numpy as np
import torch

from avgas import data


def topk_hits(logits: torch.Tensor, wanted: list[set[int]], k: int) -> np.ndarray:
    """Per image: are all wanted class indices among the top k?"""
    top = logits.topk(k, dim=1).indices.tolist()
    return np.array([w <= set(t) for t, w in zip(top, wanted)])


# -------------------------------------------------------------- judges checked both ways

TRUST_RECALL, TRUST_FALSE = 0.9, 0.05  # a judge is trusted at recall >= 0.9 and false success <= 0.05


def false_key(pairs) -> str:
    """The false-success entry of a judge check: pairs (the paper) or K-class groups."""
    if all(len(g) == 2 for g in pairs):
        return "false success: one class of a pair scored as both"
    return "false success: one class of a group scored as all"


def both_ways(pool, pairs: list[tuple[str, ...]], success) -> dict:
    """A judge measured on true images it never trained on, both ways:

    - recall: a true two-class scene of a pair is a success (both classes found / in the top 2),
      a K-class scene of a K-source group likewise (every class found / in the top K), and a true
      single-class image's class is found / top 1;
    - false success: a true image showing only ONE class of an evaluated pair is scored as showing
      both (a CRS or R@2* success it did not earn: what would inflate Table 1); for a K-class group,
      an image showing only part of it (one class, or a (K-1)-class scene of the pool) scored as
      showing all of it.

    `success(i, classes)` says whether image i of `pool` is scored as showing every class of the
    set `classes` (class names)."""
    names = pool.classes
    singles = [i for i, s in enumerate(pool.sets) if len(s) == 1]
    recalls = {}
    for k in sorted({len(s) for s in pool.sets if len(s) > 1}):
        scenes = [i for i, s in enumerate(pool.sets) if len(s) == k]
        key = "recall: two-class scenes (both classes)" if k == 2 else f"recall: {k}-class scenes (every class)"
        recalls[key] = [success(i, {names[c] for c in pool.sets[i]}) for i in scenes]
    recalls["recall: single-class images"] = [success(i, {names[next(iter(pool.sets[i]))]}) for i in singles]
    false = []
    for i, s in enumerate(pool.sets):
        shown = {names[c] for c in s}
        false += [success(i, set(group)) for group in pairs if shown < set(group)]  # a strict part of it
    mean = lambda v: float(np.mean(v)) if v else float("nan")  # noqa: E731
    return {
        **{k: mean(v) for k, v in recalls.items()},
        false_key(pairs): mean(false),
        "images": len(pool.sets),
        "one-class (image, pair) cases": len(false),
    }


def trusted(check: dict) -> bool:
    """Recall >= 0.9 on both kinds of true image and false success <= 0.05 (NaN: not measured)."""
    recalls = [v for k, v in check.items() if k.startswith("recall") and np.isfinite(v)]
    false = [v for k, v in check.items() if k.startswith("false") and np.isfinite(v)]
    return bool(recalls) and min(recalls) >= TRUST_RECALL and all(f <= TRUST_FALSE for f in false)


def ranked_success(sim: torch.Tensor, words: list[str], word_of: dict):
    """success(i, classes) for a ranking judge (CLIP, the classifier): every class's word among
    the top len(classes) of image i (R@1 for one class, R@2* for a pair, R@K* for K classes)."""
    top = sim.topk(min(sim.shape[1], 6), dim=1).indices.tolist()

    def success(i, classes):
        want = {word_of[c] for c in classes}
        return want <= {words[j] for j in top[i][: len(want)]}

    return success


def _world_stamp(p) -> str:
    """What generated the run's world: a judge trained on another world is retrained."""
    return (p.data_dir / "world.json").read_text()


JUDGE_POOL_VERSION = 2  # bump when the judge pool's recipe changes (protocol.judge_pool)


def vocabulary(p) -> list[str]:
    """The detector's and CLIP's candidate labels: the Table 5 prompts of the run's classes."""
    from avgas import paper, world

    prompts = paper.prompts()
    return sorted({prompts[c] for c in world.classes(p)})


def _validate_on_true_singles(p, cat, size: int, judge) -> dict:
    """The real run's judges on true single-class images of the run's *validation* clips (VGGSound
    has no two-class images with known classes, so only this recall can be measured; the false
    success rate is reported as not measured)."""
    val = cat[cat["split"] == "val"].groupby("label").head(10)
    from avgas import paper

    prompts = paper.prompts()
    images = data.load_images(cat, val["stem"], size)
    wanted = [{prompts[lab]} for lab in val["label"]]
    hits = judge(images, wanted)
    return {
        "recall: single-class images": float(np.mean(hits)),
        false_key(p.groups()): float("nan"),
        "images": len(wanted),
    }


def wanted(tuples) -> dict[str, list[set]]:
    """Per task, the prompt words each image of the tuples must show: every class (both, for the
    paper's two) for a mixed image, its own class for a separated one (Table 5's prompts)."""
    from avgas import paper, slots

    prompts = paper.prompts()
    words = [[prompts[c] for c in group] for group in slots.labels(tuples)]
    out = {"mixed": [set(w) for w in words]}
    for s, task in enumerate(slots.separated_tasks(slots.count(tuples))):
        out[task] = [{w[s]} for w in words]
    return out


def flag(check: dict) -> str:
    """'trusted' when a judge's held-out check has recall >= 0.9 and false success <= 0.05."""
    return "trusted" if trusted(check) else "not trusted"
