"""Issue 11, item 5: a judge is measured both ways -- recall, and the successes it gives an image
that shows only one class of a pair -- and the detector's threshold is chosen on validation."""

import math

import torch

from avgas import judges, protocol


def toy_pool():
    """Two single images (classes a, b) and one scene of the pair (a, b)."""
    return protocol.Pool(torch.zeros(3, 4, 4, 3, dtype=torch.uint8), [{0}, {1}, {0, 1}], ["a", "b"], [[], [], []])


def test_an_honest_judge_and_one_that_always_says_both():
    pool, pairs = toy_pool(), [("a", "b")]
    truth = [{"a"}, {"b"}, {"a", "b"}]
    honest = judges.both_ways(pool, pairs, lambda i, cls: cls <= truth[i])
    assert honest["recall: two-class scenes (both classes)"] == 1.0
    assert honest["recall: single-class images"] == 1.0
    assert honest["false success: one class of a pair scored as both"] == 0.0 and judges.trusted(honest)
    yes_man = judges.both_ways(pool, pairs, lambda i, cls: True)  # finds everything everywhere
    assert yes_man["false success: one class of a pair scored as both"] == 1.0 and not judges.trusted(yes_man)
    assert not judges.trusted(judges.both_ways(pool, pairs, lambda i, cls: len(cls) == 1))  # misses scenes


def test_ranked_success_is_r_at_1_for_one_class_and_r_at_2_star_for_a_pair():
    sim = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.1, 0.8]])
    ok = judges.ranked_success(sim, ["a", "b", "c"], {"A": "a", "B": "b", "C": "c"})
    assert ok(0, {"A"}) and not ok(0, {"B"}) and ok(0, {"A", "B"}) and not ok(0, {"A", "C"})
    assert ok(1, {"C", "A"}) and not ok(1, {"A"})


def test_the_detector_threshold_is_the_most_recall_within_the_false_success_limit():
    pool, pairs = toy_pool(), [("a", "b")]
    # prompts: paper.prompts() maps class names to words; use names that are their own prompts
    import avgas.paper as paper

    words = {"a": "a", "b": "b"}
    orig = paper.prompts
    paper.prompts = lambda: words
    try:
        found = [{"a": 0.9, "b": 0.3}, {"b": 0.8}, {"a": 0.7, "b": 0.6}]  # a spurious 'b' at 0.3 on image 0
        t, check = judges.choose_conf(found, pool, pairs)
    finally:
        paper.prompts = orig
    assert math.isclose(t, 0.35) and check["false success: one class of a pair scored as both"] == 0.0
    assert check["recall: two-class scenes (both classes)"] == 1.0
