import subprocess
import sys

import pytest

from avgas import params
from avgas.params import ParamsError


def write(tmp_path, text):
    f = tmp_path / "p.yaml"
    f.write_text(text)
    return f


@pytest.mark.parametrize("name", ["quick", "default"])
def test_shipped_params_files_are_valid(name):
    p = params.load(f"params/{name}.yaml")
    assert p.name == name and p.world == "synthetic"
    assert len(p.combination_list()) == 20  # Table 4


def test_misspelt_key_is_named_with_file_and_suggestion(tmp_path):
    f = write(tmp_path, "name: x\nclip_secnds: 2\n")
    with pytest.raises(ParamsError) as e:
        params.load(f)
    msg = str(e.value)
    assert "clip_secnds" in msg and str(f) in msg and "clip_seconds" in msg


def test_wrong_type_names_key_and_type(tmp_path):
    with pytest.raises(ParamsError, match=r"'clips_per_class' must be int.*'many'"):
        params.load(write(tmp_path, "clips_per_class: many\n"))
    with pytest.raises(ParamsError, match=r"'seed' must be int"):
        params.load(write(tmp_path, "seed: true\n"))


def test_impossible_values_name_the_allowed_ones(tmp_path):
    with pytest.raises(ParamsError, match=r"'world' is 'mars'; allowed values: 'synthetic', 'vggsound'"):
        params.load(write(tmp_path, "world: mars\n"))
    with pytest.raises(ParamsError, match=r"'clip_seconds' is -1.0; it must be >= 0.1"):
        params.load(write(tmp_path, "clip_seconds: -1\n"))
    with pytest.raises(ParamsError, match=r"'image_size' is 50; allowed values: \[32, 64, 128\]"):
        params.load(write(tmp_path, "image_size: 50\n"))
    with pytest.raises(ParamsError, match=r"'stand_in_sources' is \[3\].*'sources' \(2\) among them"):
        params.load(write(tmp_path, "stand_in_sources: [3]\n"))
    with pytest.raises(ParamsError, match=r"'stand_in_sources' is \[2, 7\]; it must list scene sizes from 2 to 5"):
        params.load(write(tmp_path, "stand_in_sources: [2, 7]\n"))


def test_combinations_must_use_known_classes(tmp_path):
    with pytest.raises(ParamsError, match="'dog barkin'.*allowed foregrounds"):
        params.load(write(tmp_path, "combinations: {hail: [dog barkin]}\n"))
    p = params.load(write(tmp_path, "combinations: {hail: [dog barking]}\ntrain_tuples: 5\n"))
    assert p.combination_list() == [("dog barking", "hail")]


def test_overrides_are_typed_and_checked():
    p = params.load("params/quick.yaml", ["clip_seconds=2", "name=other"])
    assert p.clip_seconds == 2.0 and p.name == "other"
    with pytest.raises(ParamsError, match="override -p: unknown key 'epochz'"):
        params.load("params/quick.yaml", ["epochz=3"])


def test_from_notebook_takes_injected_keys():
    p = params.from_notebook({"params_file": "params/quick.yaml", "seed": 7, "unrelated": 1, "clip_seconds": None})
    assert p.seed == 7 and p.clip_seconds == 1.0


def test_cli_refuses_misspelt_key_before_any_work(tmp_path):
    f = write(tmp_path, f"name: never\nrun_root: {tmp_path}/runs\nclip_secnds: 2\n")
    r = subprocess.run([sys.executable, "-m", "avgas", "run", str(f), "--only", "01"], capture_output=True, text=True)
    assert r.returncode == 2
    assert "clip_secnds" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "runs").exists()


def test_every_tier_validates_and_vggsound_names_every_file():
    import yaml

    for tier in ("quick", "default", "vggsound"):
        params.load(f"params/{tier}.yaml")
    raw = yaml.safe_load(open("params/vggsound.yaml"))
    for key in (
        "data_root",
        "metadata_csv",
        "sound2scene_checkpoint",
        "swav_checkpoint",
        "icgan_folder",
        "inception_weights",
        "detector_weights",
        "clip_checkpoint",
    ):
        assert raw.get(key), key
    assert (raw["train_tuples"], raw["batch_size"], raw["epochs"]) == (20000, 16, 50)


def test_device_auto_is_the_cpu_here_and_cuda_is_refused_without_a_gpu():
    import torch

    p = params.load("params/quick.yaml")
    assert p.torch_device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(params.ParamsError, match="torch sees no GPU"):
            p.replace(device="cuda").torch_device


def test_default_params_cite_only_validation_numbers_in_their_comments():
    """Issue 11, item 3: settings are chosen on validation data; a comment that justifies a setting
    with a score says it is a validation score (python -m avgas validate), never a test one."""
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "params" / "default.yaml").read_text()
    comments = [ln.split("#", 1)[1] for ln in text.splitlines() if "#" in ln]
    scored = [c for c in comments if re.search(r"\b(CRS|R@|FID|IS|oracle)\b|\d\.\d\d", c)]
    assert all("validation" in c and "test" not in c for c in scored), scored


# ------------------------------------------------------------------------- three rooms (issue 24)


def test_the_rooms_are_one_params_and_the_package_reexports_them():
    """The schema, loading and the experiment design are modules of their own; `avgas.params` is
    what notebooks and users import, and Params' design methods are the design module's functions."""
    from avgas.params import design, loading, schema

    assert params.Params is schema.Params and params.load is loading.load and params.FIELDS is schema.FIELDS
    p = params.load("params/quick.yaml", {"unseen_pairs": 2})
    assert p.combination_list() == design.combination_list(p) and p.unseen() == design.unseen(p)
    assert len(p.unseen()) == 2 and not set(p.unseen()) & set(p.combination_list())
    k3 = p.replace(sources=3, unseen_pairs=0)
    assert k3.groups() == design.groups(k3) and all(len(g) == 3 for g in k3.groups())


def test_input_keys_are_defined_once():
    """Every input the user names is protected (INPUT_KEYS); ingestion reads a share of them
    (INGEST_INPUT_KEYS), defined in the schema, not again in avgas.vggsound."""
    from avgas import vggsound

    assert not hasattr(vggsound, "INPUT_KEYS")
    assert set(params.INGEST_INPUT_KEYS) | set(params.WEIGHT_KEYS) <= set(params.INPUT_KEYS)
    assert set(params.INPUT_KEYS) <= set(params.FIELDS)
