"""Issue 11, item 1-2: the stand-ins, the judges and the run's data are separate pools, and G and
f_V never see a scene of an evaluated pair."""

import hashlib

import numpy as np
import soundfile as sf
import torch

from avgas import data, protocol, standins, world


def _hashes(images) -> set:
    return {hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images}


def test_pools_share_no_image_and_no_clip(small_params):
    p = small_params
    world.generate(p, progress=False)
    cat = data.catalogue(p)
    pools = {
        "run data": _hashes(data.load_images(cat, cat["stem"]).numpy()),
        "run scenes": _hashes(np.concatenate([world.composites(p, s, 2)[0] for s in ("val", "test")])),
        "stand-ins": _hashes(protocol.standin_pool(p).images.numpy()),
    }
    for part in protocol.JUDGE_PARTS:
        pools[f"judges {part}"] = _hashes(protocol.judge_pool(p, part).images.numpy())
    names = list(pools)
    for i, a in enumerate(names):
        assert len(pools[a]) > 0
        for b in names[i + 1 :]:
            assert not pools[a] & pools[b], (a, b)
    # the stand-ins' sounds are not the run's clips either (compared as the 16-bit wavs hold them)
    pool_waves = {np.round(w * 32767).astype(np.int16).tobytes() for w in protocol.standin_pool(p).waves}
    run_waves = {sf.read(a, dtype="int16")[0].tobytes() for a in cat["audio"]}
    assert not pool_waves & run_waves


def test_generator_pairs_are_the_other_pairings(small_params):
    ev, gen = protocol.evaluated_pairs(small_params), protocol.generator_pairs(small_params)
    assert ev and gen and not set(ev) & set(gen)
    fgs, bgs = {f for f, _ in ev}, {b for _, b in ev}
    assert set(ev) | set(gen) == {(f, b) for f in fgs for b in bgs}
    assert set(small_params.unseen()) <= set(ev)  # unseen pairings: judged, never shown to G (issue 13)
    rec = protocol.record(small_params)
    assert not set(rec["evaluated_pairs"]) & set(rec["generator_pairs"])


def test_g_and_f_v_never_train_on_an_evaluated_pair(small_params, monkeypatch):
    """What the stand-in trainers are handed, and every blend BlendedConditions makes."""
    from tests.test_inputs_untouched import TINY

    p = small_params.replace(**{**TINY, "g_steps": 10, "scenes_per_combination": 4}, g_blend_share=1.0)
    seen = {}
    real_fv, real_g = standins.train_image_encoder, standins.train_generator
    blends = []
    real_call = standins.BlendedConditions.__call__

    def spy_blend(self, idx, h, gen):
        blends.extend(self.parts[i] for i in idx.tolist() if i in self.parts)
        return real_call(self, idx, h, gen)

    def spy_fv(p_, pool, progress=True):
        seen["f_V"] = pool.sets
        return real_fv(p_, pool, progress)

    def spy_g(p_, images, feats, progress=True, sets=None):
        seen["G"] = sets
        return real_g(p_, images, feats, progress, sets=sets)

    monkeypatch.setattr(standins, "train_image_encoder", spy_fv)
    monkeypatch.setattr(standins, "train_generator", spy_g)
    monkeypatch.setattr(standins.BlendedConditions, "__call__", spy_blend)
    classes = world.classes(p)
    evaluated = {frozenset((classes.index(f), classes.index(b))) for f, b in protocol.evaluated_pairs(p)}
    standins.ensure(p, progress=False)
    for part, sets in seen.items():
        pairs = {frozenset(s) for s in sets if len(s) == 2}
        assert pairs and not pairs & evaluated, part
    assert blends and not {frozenset(b) for b in blends} & evaluated
    assert torch.is_tensor(protocol.standin_pool(p).images)
