"""`python -m avgas plan` (issue 25): clips, tuples, disk, FLOPs, memory and GPU hours before the GPU,
its FLOPs those of torch.utils.flop_counter on the real networks."""

import csv
import json
import shutil

import fakes
import pytest
import torch
from PIL import Image

from avgas import cli, losses, models, params, plan, spectrogram

COMBOS = {"hail": ["dog barking"]}


def test_the_separators_flops_are_those_of_the_flop_counter_on_a_real_pass():
    """The plan's meta-device count against FlopCounterMode on real tensors (CPU): forward and
    backward of the separator on real spectrograms with the A2A loss."""
    from torch.utils.flop_counter import FlopCounterMode

    p = params.load("params/quick.yaml", {"separator_width": 0.25})
    frames = spectrogram.n_frames(p.clip_seconds)
    net = models.Separator(width=p.separator_width, sources=p.sources)
    spec = torch.randn(2, 257, frames)
    targets = {"A": tuple(torch.randn(2, models.FEATURE_DIM) for _ in range(p.sources))}
    with FlopCounterMode(display=False) as fc:
        losses.separator_loss(net(spec), targets, "A2A").backward()
    real = fc.get_total_flops() / 2
    planned = plan.separator_cost(p).flops
    assert planned > 1e8 and abs(planned - real) / real < 0.01, (planned, real)
    # and it follows the shapes: twice the clip, about twice the FLOPs; the paper's width, more
    longer = plan.separator_cost(p.replace(clip_seconds=2 * p.clip_seconds)).flops
    assert 1.8 < longer / planned < 2.2
    assert plan.separator_cost(p.replace(separator_width=1.0)).flops > 8 * planned


def test_training_memory_follows_the_batch():
    p = params.load("params/quick.yaml")
    c = plan.separator_cost(p)
    assert c.params == sum(t.numel() for t in models.Separator(width=p.separator_width).parameters())
    assert c.saved_bytes > 4 * 257 * spectrogram.n_frames(p.clip_seconds)  # at least the input, in float32


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """A real-format toy corpus: VGGSound's csv and a folder of tiny mp4s (and no weights)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg missing: make setup installs it")
    root = tmp_path_factory.mktemp("plan")
    videos = root / "videos"
    videos.mkdir()
    rows = []
    for i, (label, split) in enumerate(
        [("dog barking", "train")] * 3
        + [("dog barking", "test")] * 2
        + [("hail", "train")] * 4
        + [("hail", "test")] * 2
    ):
        name = f"toy{i:02d}_000000"
        if i != 8:  # one row of the csv has no video
            fakes.mp4(videos, name, Image.new("RGB", (32, 32), (10 * i, 0, 0)), fakes.sound(name, 1.0), 1.0, 10)
        rows.append((f"toy{i:02d}", 0, label, split))
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    changes = {
        "combinations": COMBOS,
        "vggsound_csv": str(root / "vggsound.csv"),
        "video_dir": str(videos),
        "data_root": str(root / "data"),
        "metadata_csv": str(root / "data" / "metadata.csv"),
        "run_root": str(root / "runs"),
        "train_tuples": 8,
        "val_tuples": 2,
        "test_tuples": 4,
    }
    return root, changes


def _args(changes):
    return [a for k, v in changes.items() for a in ("-p", f"{k}={json.dumps(v) if isinstance(v, dict) else v}")]


def test_plan_on_the_toy_real_format_corpus_prints_the_tables(toy, capsys):
    root, changes = toy
    code = cli.main(["plan", "params/vggsound.yaml", *_args(changes), "--gpu", "a100x1,h100x4"])
    out, err = capsys.readouterr()
    assert code == 0, err
    for words in (
        "clips per class",
        "tuples per source group",
        "disk (GB)",
        "stages:",
        "separator training",
        "a100x1 (h)",
        "h100x4 (h)",
        "assumptions:",
        "CLIP image tower",
    ):
        assert words in out, words
    written = json.loads((root / "runs" / "vggsound" / "plan.json").read_text())
    clips = {r["class"]: r for r in written["clips"]}
    assert (clips["dog barking"]["train"], clips["dog barking"]["test"]) == (3, 2)
    assert (clips["hail"]["train"], clips["hail"]["test"]) == (3, 2)  # the row without a video is not found
    sep = written["stages"]["separator training (all alignments and seeds)"]
    p = params.load("params/vggsound.yaml", changes)
    assert sep["items"] == (3 * p.separator_seeds + p.control) * p.epochs * p.train_tuples  # 3 alignments, the control
    assert sep["FLOPs"] == pytest.approx(plan.separator_cost(p).flops * sep["items"])
    assert 2 * sep["a100x1 (h)"] > sep["h100x4 (h)"] > 0
    assert set(written["fits in memory"]) == {"a100x1", "h100x4"}


def test_plan_stops_with_one_line_when_it_cannot_count(toy, capsys, tmp_path):
    _, changes = toy
    code = cli.main(["plan", "params/vggsound.yaml", *_args({**changes, "vggsound_csv": str(tmp_path / "none.csv")})])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "'vggsound_csv'" in err and "'metadata_csv'" in err
    code = cli.main(["plan", "params/vggsound.yaml", *_args(changes), "--gpu", "a100x1,b200x9"])
    err = capsys.readouterr().err
    assert code == 1 and "'b200x9'" in err and "h100" in err
