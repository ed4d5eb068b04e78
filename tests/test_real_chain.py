"""The whole real-run chain (world: vggsound) at toy size, on files made here in the real formats:
mp4 clips with a vggsound.csv and a frame json, ingested by prepare-vggsound; randomly initialised
weights saved as the released files are (`audnet.` dict, `module.` SwAV dict with heads, IC-GAN
folder with config and best_FID, torch-fidelity Inception, Ultralytics YOLO-World `.pt`, OpenCLIP
state dict). The numbers are meaningless; the point is that every path executes."""

import csv
import json
import shutil
import subprocess
import sys

import fakes
import numpy as np
import pytest
import torch
import yaml

from avgas import checkpoints, models, pictures, sounds

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing: make setup installs it"),
]
COMBOS = {"hail": ["dog barking", "train horning"]}


def _mp4(folder, name, label, rng):
    fakes.mp4(folder, name, pictures.draw(label, rng, 64), sounds.render(label, rng, 2.0), 2.0)


def _weights(root):
    """Random weights, each saved in its released file's format, at toy widths."""
    w = root / "weights"
    w.mkdir()
    torch.manual_seed(0)
    checkpoints.save_audio_encoder(models.AudioEncoder(width=0.125), w / "sound2scene.pth")
    fv = models.image_encoder(4)
    checkpoints.save_image_encoder(
        fv,
        w / "swav_800ep_pretrain.pth.tar",
        heads={"projection_head.0.weight": torch.zeros(16, 2048), "prototypes.weight": torch.zeros(10, 16)},
    )
    cfg = checkpoints.icgan_config(G_ch=4, dim_z=20, resolution=32, G_attn="0", shared_dim_feat=16)
    checkpoints.save_generator(models.Generator(cfg), w / "icgan_biggan_imagenet_res128", best_fid=12.3)
    fakes.inception_file(w / "weights-inception-2015-12-05-6726825d.pth")
    from avgas import judges

    ul = judges._ultralytics(root / "ul")
    ul.YOLO("yolov8s-worldv2.yaml").save(str(w / "yolov8x-worldv2.pt"))
    # a small OpenCLIP architecture with ViT-B-32's 512-d embedding (what YOLO-World reads)
    config = {
        "embed_dim": 512,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
    }
    (w / "clip-toy.json").write_text(json.dumps(config))
    import open_clip

    open_clip.add_model_config(w / "clip-toy.json")
    torch.save(open_clip.create_model("clip-toy", pretrained=None).state_dict(), w / "open_clip_pytorch_model.bin")
    return w


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("realchain")
    videos = root / "videos"
    videos.mkdir()
    rng = np.random.default_rng(0)
    rows, frames = [], {}
    for label in ["hail", "dog barking", "train horning"]:
        for i, split in enumerate(["train"] * 4 + ["test"] * 2):
            ytid = f"{label[:4].replace(' ', '_')}{i:02d}"
            _mp4(videos, f"{ytid}_{i:06d}", label, rng)
            rows.append((ytid, i, label, split))
            frames[f"{ytid}_{i * 1000}_{i * 1000 + 10000}"] = [10, 4]
    rows.append(("broken00", 0, "hail", "train"))
    (videos / "broken00_000000.mp4").write_bytes(b"\x00" * 100)
    with open(root / "vggsound.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    (root / "top1_boxes_top10_moments.json").write_text(json.dumps(frames))
    w = _weights(root)
    params = yaml.safe_load(open("params/vggsound.yaml"))
    params.update(
        {
            "name": "toy",
            "run_root": str(root / "runs"),
            "threads": 2,
            "combinations": COMBOS,
            "vggsound_csv": str(root / "vggsound.csv"),
            "video_dir": str(videos),
            "frames_json": str(root / "top1_boxes_top10_moments.json"),
            "data_root": str(root / "data"),
            "metadata_csv": str(root / "data" / "metadata.csv"),
            "min_clip_seconds": 1.0,
            "val_fraction": 0.25,
            "clip_seconds": 1.0,
            "train_tuples": 8,
            "val_tuples": 2,
            "test_tuples": 4,
            "fv_image_size": 32,
            "sound2scene_checkpoint": str(w / "sound2scene.pth"),
            "swav_checkpoint": str(w / "swav_800ep_pretrain.pth.tar"),
            "icgan_folder": str(w / "icgan_biggan_imagenet_res128"),
            "inception_weights": str(w / "weights-inception-2015-12-05-6726825d.pth"),
            "detector_weights": str(w / "yolov8x-worldv2.pt"),
            "clip_checkpoint": str(w / "open_clip_pytorch_model.bin"),
            "clip_model": str(w / "clip-toy.json"),
            "detector_imgsz": 64,
            "separator_width": 0.125,
            "epochs": 1,
            "batch_size": 4,
            "resume": False,
        }
    )
    f = root / "toy.yaml"
    f.write_text(yaml.safe_dump(params))
    return f


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "avgas", *args], capture_output=True, text=True)


def test_check_ingest_and_every_notebook_run_on_real_format_files(toy):
    r = _cli("check", str(toy))  # before ingestion: the data is missing, every weight file is fine
    assert r.returncode == 1 and "[missing] metadata csv" in r.stdout, r.stdout + r.stderr
    for key in (
        "sound2scene_checkpoint",
        "swav_checkpoint",
        "icgan_folder",
        "inception_weights",
        "detector_weights",
        "clip_checkpoint",
    ):
        assert f"[     ok] {key.replace('_', ' ')}" in r.stdout, (key, r.stdout)
    r = _cli("prepare-vggsound", str(toy), "--workers", "2")
    assert r.returncode == 0 and "18 of 19 clips" in r.stdout and "1 skipped" in r.stdout, r.stdout + r.stderr
    assert _cli("check", str(toy)).returncode == 0
    r = _cli("run", str(toy))
    assert r.returncode == 0, r.stderr[-4000:]
    import nbformat

    nb = nbformat.read(toy.parent / "runs" / "toy" / "01_data.ipynb", as_version=4)
    html = "".join(
        o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "prepare-vggsound" in html and "no decodable audio" in html  # the ingestion summary and skip-list
    res = json.loads((toy.parent / "runs" / "toy" / "results.json").read_text())
    assert set(res["results"]) == {"mixed", "separated_foreground", "separated_background"}
    assert {"FID", "IS", "CRS", "R@1"} <= set(res["results"]["separated_foreground"]["A2A"])
    assert {"IS", "CRS", "R@2*"} <= set(res["results"]["mixed"]["Sound2Scene"])
