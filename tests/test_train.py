from pathlib import Path

import fakes
import pytest
import torch

from avgas import params, separators, train
from avgas.core import separator

fake_data = fakes.separator_data


@pytest.fixture
def setup(tmp_path):
    p = params.load(
        "params/quick.yaml", {"run_root": str(tmp_path), "epochs": 3, "separator_width": 0.05, "batch_size": 8}
    )
    return p, fake_data(40, 1), fake_data(16, 2)


def weights(p, alignment):
    return torch.load(train.separator_folder(p, alignment) / "last.pt", weights_only=False)["model"]


def test_killed_run_resumes_to_the_same_weights(setup, monkeypatch):
    """A deterministic restart from scratch would also end on the uninterrupted run's weights, so
    the test proves the resume happened: the resumed call trains only the epochs left, and its
    history starts with the killed run's own first epoch (its wall-clock seconds, which a fresh
    epoch would not reproduce)."""
    from avgas.core import losses  # what training calls

    p, tr, va = setup
    a = p.replace(name="uninterrupted")
    full = train.train_separator(a, "A2A", tr, va, progress=False)
    # another run root: the instrument store beside `a` holds a's finished training, which a run
    # with the same inputs would take as it is instead of training (tests/test_instrument.py)
    b = p.replace(name="killed", run_root=str(Path(p.run_root) / "elsewhere"))
    train.train_separator(b, "A2A", tr, va, progress=False, stop_after=1)  # 'killed' after epoch 1
    killed = torch.load(train.separator_folder(b, "A2A") / "last.pt", weights_only=False)
    assert killed["epoch"] == 0 and len(killed["history"]["val_loss"]) == 1
    batches = []  # every loss the resumed call computes (train and validation batches)
    real = losses.separator_loss
    monkeypatch.setattr(losses, "separator_loss", lambda *a, **k: batches.append(1) or real(*a, **k))
    resumed = train.train_separator(b.replace(resume=True), "A2A", tr, va, progress=False)
    per_epoch = len(tr.mix) // p.batch_size + len(va.mix) // p.batch_size
    assert len(batches) == (p.epochs - 1) * per_epoch, "the resumed call did not start at epoch 2"
    assert resumed.history["seconds"][0] == killed["history"]["seconds"][0]
    wa, wb = weights(a, "A2A"), weights(b, "A2A")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert resumed.history["val_loss"] == full.history["val_loss"]
    assert resumed.best_epoch == full.best_epoch


def test_finished_training_is_reused_and_best_epoch_is_kept(setup):
    p, tr, va = setup
    first = train.train_separator(p, "A2V", tr, va, progress=False)
    again = train.train_separator(p, "A2V", tr, va, progress=False)
    assert again.reused and again.history == first.history
    best = torch.load(train.separator_folder(p, "A2V") / "best.pt", weights_only=False)
    assert best["epoch"] == first.best_epoch
    assert best["val_loss"] == pytest.approx(min(first.history["val_loss"]))
    model = separators.load_separator(p, "A2V")
    h_fg, h_bg = separator.separate(model, va.mix)
    assert h_fg.shape == h_bg.shape == (16, 16)


def test_changed_settings_retrain_from_scratch(setup):
    p, tr, va = setup
    train.train_separator(p, "A2A", tr, va, progress=False)
    other = train.train_separator(p.replace(lr=5e-4), "A2A", tr, va, progress=False)
    assert not other.reused and len(other.history["val_loss"]) == 3


def test_closer_to_own_source():
    own = torch.eye(4)
    other = torch.eye(4).roll(1, 0)
    assert separator.closer_to_own_source(own + 0.1, own, other) == 1.0
    assert separator.closer_to_own_source(other, own, other) == 0.0


@pytest.mark.parametrize("damaged", ["last.pt", "best.pt"])
def test_a_truncated_own_checkpoint_is_detected_and_trained_again(setup, damaged, capsys):
    """Issue 10, item 9: a half-written separator file (a full disk) is named and retrained, never
    trusted and never blamed on someone else's file."""
    p, tr, va = setup
    first = train.train_separator(p, "A2A", tr, va, progress=False)
    f = train.separator_folder(p, "A2A") / damaged
    f.write_bytes(f.read_bytes()[:200])
    again = train.train_separator(p, "A2A", tr, va, progress=False)
    assert not again.reused and again.history["val_loss"] == first.history["val_loss"]
    assert damaged in capsys.readouterr().out
    assert separators.load_separator(p, "A2A") is not None  # whole again


def test_loading_a_damaged_separator_names_the_file_and_the_fix(setup):
    from avgas.checkpoints import CheckpointError

    p, tr, va = setup
    train.train_separator(p, "A2V", tr, va, progress=False)
    f = train.separator_folder(p, "A2V") / "best.pt"
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"best.pt: this run's separator checkpoint is damaged.*--only 03"):
        separators.load_separator(p, "A2V")


def test_trainings_side_by_side_equal_the_ones_made_one_after_another(setup):
    """train_jobs: 2 trains in two worker processes of one thread each; every training must be
    the one made alone (same seed, epochs, weights), read back by train_all, not trained again."""
    p, tr, va = setup
    p = p.replace(threads=1, alignments=["A2A", "A2V", "A2A+A2V"], control=False, separator_seeds=1)
    torch.set_num_threads(1)
    alone = train.train_all(p.replace(name="alone"), tr, va, progress=False)
    q = p.replace(name="jobs", run_root=str(Path(p.run_root) / "elsewhere"), train_jobs=2)  # its own store
    jobs = train.train_all(q, tr, va, progress=False)
    assert set(jobs) == set(alone) and all(r.reused for r in jobs.values())  # trained by the workers
    for name, r in alone.items():
        assert jobs[name].history["val_loss"] == r.history["val_loss"], name
        wa, wb = weights(p.replace(name="alone"), r.alignment), weights(q, r.alignment)
        assert all(torch.equal(wa[k], wb[k]) for k in wa), name
    assert not list((q.run_dir / "cache").glob(".train-jobs-*"))  # the workers' data file is gone


@pytest.mark.parametrize("native", [True, False])
def test_amp_on_the_cpu_trains_under_bf16_autocast_only_where_the_cpu_has_bf16(setup, monkeypatch, caplog, native):
    """amp: true on a CPU with bfloat16 instructions: the convolutions run in bfloat16 and the
    training is a separator of its own (another store key); on a CPU without them it is the float32
    training, said once in the log."""
    p, tr, va = setup
    monkeypatch.setattr(train, "cpu_has_bf16", lambda: native)
    monkeypatch.setattr(train, "_said_ignored", False)
    seen = set()
    real = train._new_model

    def watched(*a, **k):
        model = real(*a, **k)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
        first.register_forward_hook(lambda m, i, o: seen.add(o.dtype))
        return model

    monkeypatch.setattr(train, "_new_model", watched)
    p = p.replace(device="cpu")  # on a machine with CUDA, `auto` would train there
    amp = p.replace(amp=True)
    train.train_separator(amp, "A2A", tr, va, progress=False)
    assert seen == ({torch.bfloat16} if native else {torch.float32})
    assert (train._settings(amp, "A2A", 40) != train._settings(p, "A2A", 40)) is native
    assert ("amp: true is ignored here" in caplog.text) is not native


def test_the_cpu_bf16_check_asks_torch_helpers_that_exist():
    """cpu_has_bf16 reads private torch helpers; a torch that renamed both would turn amp off
    everywhere on the CPU, said only in the log: this fails first."""
    assert any(callable(getattr(torch.cpu, n, None)) for n in train.BF16_CHECKS)
    assert isinstance(train.cpu_has_bf16(), bool)
