"""K sources and permutation-invariant slot assignment (issue 13): the loss, the assignment, the
tuples, the groups and the pairings kept apart."""

import itertools

import numpy as np
import pytest
import torch

from avgas import data, losses, models, params, protocol, slots
from avgas.core import separator


def _batch(k: int, b: int = 6, d: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    targets = {kind: tuple(torch.rand(b, d, generator=g) for _ in range(k)) for kind in "AV"}
    return targets, g


def _near(targets, g, kind="A", noise=0.05):
    """Slots close to their own sources, in the fixed order (so the fixed order is the best one)."""
    return tuple(t + noise * torch.randn(t.shape, generator=g) for t in targets[kind])


@pytest.mark.parametrize("alignment", ["A2A", "A2V", "A2A+A2V"])
def test_pit_loss_equals_the_fixed_order_loss_for_two_sources_when_that_order_is_best(alignment):
    targets, g = _batch(2)
    hs = _near(targets, g, kind=alignment[-1])
    perm = losses.assign(hs, targets, alignment + losses.PIT)
    assert perm.tolist() == [[0, 1]] * len(perm)  # the fixed order is the one chosen
    fixed = losses.separator_loss(hs, targets, alignment)
    pit = losses.separator_loss(hs, targets, alignment + losses.PIT)
    assert pit.item() == fixed.item()  # the same computation, bit for bit


def test_pit_undoes_swapped_slots_and_the_fixed_order_does_not():
    targets, g = _batch(2)
    hs = _near(targets, g)
    swapped = hs[::-1]
    fixed = losses.separator_loss(hs, targets, "A2A")
    assert losses.separator_loss(swapped, targets, "A2A-PIT").item() == pytest.approx(fixed.item(), rel=1e-6)
    assert losses.separator_loss(swapped, targets, "A2A").item() > fixed.item() + 0.1


@pytest.mark.parametrize("k", [2, 3, 4])
def test_the_assignment_is_invariant_to_shuffling_the_sources(k):
    targets, g = _batch(k, b=8, seed=k)
    hs = tuple(torch.rand(8, 16, generator=g) for _ in range(k))  # any slots, not only near ones
    base = losses.separator_loss(hs, targets, "A2A+A2V-PIT")
    perm = losses.assign(hs, targets, "A2A+A2V-PIT")
    # each tuple's sources shuffled its own way, both target kinds alike
    shuffle = torch.stack([torch.randperm(k, generator=g) for _ in range(8)])
    shuffled = {kind: losses.reorder(targets[kind], shuffle) for kind in "AV"}
    assert losses.separator_loss(hs, shuffled, "A2A+A2V-PIT").item() == pytest.approx(base.item(), rel=1e-6)
    # and the assignment follows the sources: slot s still gets the same source
    new = losses.assign(hs, shuffled, "A2A+A2V-PIT")
    assert torch.equal(shuffle.gather(1, new), perm)


def test_exhaustive_and_hungarian_assignments_agree():
    cost = torch.rand(50, 4, 4, generator=torch.Generator().manual_seed(1))
    exhaustive = losses.best_assignment(cost)
    hungarian = losses.best_assignment(cost, exhaustive_up_to=0)
    total = lambda perm: cost.gather(2, perm[..., None]).sum((1, 2))  # noqa: E731
    assert torch.allclose(total(exhaustive), total(hungarian))
    brute = torch.stack(
        [
            min((cost[i, torch.arange(4), torch.tensor(p)].sum() for p in itertools.permutations(range(4))))
            for i in range(50)
        ]
    )
    assert torch.allclose(total(exhaustive), brute)


def test_a_pit_separator_is_matched_to_its_sources_at_evaluation_by_embeddings():
    targets, g = _batch(3)
    hs = _near(targets, g)
    shuffled = (hs[2], hs[0], hs[1])
    back = separator.matched("A2A-PIT", shuffled, targets)
    assert all(torch.equal(a, b) for a, b in zip(back, hs))
    assert separator.matched("A2A", shuffled, targets) is shuffled  # the fixed order is kept as it is


def test_the_separator_has_k_slots():
    sep = models.Separator(width=0.1, dim=8, sources=3)
    out = sep(torch.rand(2, 257, 20))
    assert len(out) == 3 and all(h.shape == (2, 8) for h in out)


def test_three_source_groups_have_distinct_prompts_and_stay_apart_from_the_generator():
    p = params.load("params/quick.yaml", {"sources": 3})
    groups = p.groups()
    assert groups and all(len(g) == 3 for g in groups)
    from avgas import paper

    words = paper.prompts()
    assert all(len({words[c] for c in g}) == 3 for g in groups)
    # no scene the stand-ins see holds an evaluated pair of a group
    evaluated_pairs = {(fg, g[-1]) for g in groups for fg in g[:-1]}
    for shown in protocol.generator_pairs(p):
        assert not {(fg, shown[-1]) for fg in shown[:-1]} & evaluated_pairs
    assert p.unseen() == []  # unseen pairings are a two-source question


def test_unseen_pairings_are_never_mixed_in_training_and_never_shown_to_the_generator():
    p = params.load("params/quick.yaml", {"unseen_pairs": 5})
    unseen = p.unseen()
    assert len(unseen) == 5 and len(set(unseen)) == 5
    assert not set(unseen) & set(p.combination_list())
    assert not set(unseen) & set(protocol.generator_pairs(p))
    assert set(unseen) <= set(protocol.evaluated_pairs(p))  # the judges are checked on them


@pytest.mark.parametrize("k", [2, 3])
def test_k_source_tuples_keep_the_splits_disjoint_by_clip(small_params, k):
    from avgas import world

    p = small_params.replace(sources=k, unseen_pairs=2, **({"test_tuples": 6} if k == 2 else {}))
    world.generate(p, progress=False)
    cat = data.catalogue(p)
    tuples = data.make_tuples(cat, p)
    cols = slots.stem_columns(k)
    assert slots.count(tuples) == k and len(cols) == k
    clips = {s: set(tuples.loc[tuples["split"] == s, cols].to_numpy().ravel()) for s in data.SPLITS}
    for a, b in itertools.combinations(data.SPLITS, 2):
        assert not clips[a] & clips[b], (a, b)
    split_of = dict(zip(cat["stem"], cat["split"]))
    for s in data.SPLITS:
        assert {split_of[c] for c in clips[s]} == {s}  # every clip of a tuple from the tuple's split
    # each tuple holds K distinct classes, in slot order: foregrounds, then the background
    labels = slots.labels(tuples)
    assert all(len(set(g)) == k for g in labels)
    assert {g for g in labels} <= set(p.groups()) | set(p.unseen())
    unseen = tuples[tuples["split"] == "unseen"]
    assert (len(unseen) > 0) == (k == 2)
    assert {split_of[c] for c in unseen[cols].to_numpy().ravel()} <= {"test"}


def test_a_k_source_mix_adds_every_source():
    a, b, c = (np.full(10, v, dtype=np.float32) for v in (0.1, 0.2, 0.3))
    assert np.allclose(data.mix(a, c, 0.0, [b]), 0.6)
    assert np.array_equal(data.mix(a, c), a + c)  # two sources: as before
    assert np.abs(data.mix(a * 5, c * 5, 0.0, [b * 5])).max() == pytest.approx(1.0)  # scaled, not clipped


def test_pit_undoes_a_three_cycle_of_the_slots():
    targets, g = _batch(3)
    hs = _near(targets, g)
    fixed = losses.separator_loss(hs, targets, "A2A")
    cycled = (hs[2], hs[0], hs[1])  # a permutation that is not its own inverse
    assert losses.separator_loss(cycled, targets, "A2A-PIT").item() == pytest.approx(fixed.item(), rel=1e-6)
    assert losses.separator_loss(cycled, targets, "A2A").item() > fixed.item() + 0.1


def test_one_foreground_composite_is_the_paper_s_two_class_scene():
    from avgas import pictures

    for fg, bg in (("dog barking", "hail"), ("playing harp", "sea waves")):
        a = pictures.composite(fg, bg, np.random.default_rng(5), 64)
        b = pictures.composite_many([fg], bg, np.random.default_rng(5), 64)
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_judge_that_scores_part_of_a_group_as_all_of_it_is_caught():
    """The false success of K-class groups counts (K-1)-class scenes scored as all K classes."""
    from types import SimpleNamespace

    from avgas.judges import checks

    names = ["hail", "dog barking", "train horning"]
    pool = SimpleNamespace(classes=names, sets=[{0}, {1}, {2}, {0, 1}, {0, 1, 2}])
    group = [("dog barking", "train horning", "hail")]
    says_all = lambda i, classes: True  # noqa: E731 - a judge that always finds everything
    check = checks.both_ways(pool, group, says_all)
    key = "false success: one class of a group scored as all"
    assert check[key] == 1.0 and check["one-class (image, pair) cases"] == 4  # 3 singles + the 2-class scene
    honest = lambda i, classes: classes <= {names[c] for c in pool.sets[i]}  # noqa: E731
    assert checks.both_ways(pool, group, honest)[key] == 0.0
    assert checks.both_ways(pool, group, honest)["recall: 3-class scenes (every class)"] == 1.0


def test_the_judges_see_part_scenes_of_three_source_groups_on_validation_and_test_only():
    p = params.load("params/quick.yaml", {"sources": 3})
    parts = protocol.subset_groups(p)
    assert parts and all(len(g) == 2 and g in p.combination_list() for g in parts)
    assert protocol.subset_groups(params.load("params/quick.yaml")) == []
    rec = protocol.record(p)["pools"]
    assert "2-class scenes (false-success check)" in rec["judges (val)"]
    assert "2-class scenes (false-success check)" not in rec["judges (train)"]


def test_more_unseen_pairings_than_exist_is_refused(small_params):
    assert len(small_params.replace(unseen_pairs=3).unseen()) == 3  # the small world's 3 other pairings
    with pytest.raises(params.ParamsError, match="'unseen_pairs' is 4, but .* only 3"):
        small_params.replace(unseen_pairs=4)
