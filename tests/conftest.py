import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("AVGAS_ROOT", os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from avgas import params  # noqa: E402

# A small world for unit tests: 3 combinations, 6 clips per class, 0.5 s clips.
SMALL = {
    "combinations": {"hail": ["dog barking", "train horning"], "sea waves": ["people cheering"]},
    "clips_per_class": 6, "clip_seconds": 0.5, "image_size": 32,
    "train_tuples": 12, "val_tuples": 3, "test_tuples": 6, "test_fraction": 0.34, "val_fraction": 0.25,
}


@pytest.fixture
def small_params(tmp_path):
    return params.load("params/quick.yaml", {**SMALL, "run_root": str(tmp_path), "name": "t"})
