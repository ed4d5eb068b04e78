"""A run's folder, and the only place that knows the names of the files in it.

Every module and notebook asks a :class:`RunFolder` for a run's files (``RunFolder.of(p).results``,
or ``p.folder.results`` on a Params) instead of spelling the name itself, so a file is renamed
in one line and a reader finds every file of a run here, with the step that writes it:

==========================  =====================================================================
``params``                  params.yaml: the resolved params of the run (the runner)
``manifest``                run.json: each notebook's status and time (the runner)
``log``, ``kernel_log``     log.txt, kernel.log: progress lines; the notebook kernels' stderr
``stages``                  stages.jsonl: one line per finished progress bar (avgas.progress)
``tuples``                  tuples.csv: the run's tuples (notebook 01)
``protocol``                protocol.json: the instrument's pools and seeds (avgas.protocol)
``train_params``            .train-params.yaml: the params a torchrun training reads (avgas.train)
``separation``              separation.json: the separators' training summary (notebook 03)
``generated``               generated.pt: the generated images (notebook 04)
``metrics(what)``           metrics_<what>.json: scores per judge (avgas.scoring, avgas.loudness)
``validation``              validation.json: CRS on validation tuples (notebook 06)
``beyond``                  beyond.json: K sources, unseen pairings (notebook 10)
``plan``                    plan.json: the run's size before the GPU (python -m avgas plan)
``results``                 results.json: every table and claim of the run (notebook 08)
``checkpoints``, ``cache``  folders: trained parts and stand-ins; recomputable caches
``judges``                  folder: checkpoints/judges/, the synthetic world's judges
``stand_ins_report``        checkpoints/stand_ins.json: the stand-ins' held-out checks (notebook 02)
``weights(key)``            where a pretrained part is read from when its params key is null
``figures``, ``app``        folders: saved figures (``figure(name)``); the explorer app's notebook
``data``                    folder: the synthetic world, when ``data_root`` is not given
``previous``                folder: notebooks of a run reused with other params (--overwrite)
==========================  =====================================================================

:class:`DataFolder` does the same for the data layout (audios/, images/, the metadata csv and
prepare-vggsound's records). Light on purpose (pathlib only): the CLI and avgas.custody import it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

METRICS = ("fid_is", "crs", "rk", "loudness")  # metrics_<what>.json: FID/IS, CRS, R@K (05-07), loudness
# Where a pretrained part is read from when its params key is null: inside checkpoints/, where the
# synthetic world saves its stand-ins (notebook 02) and judges (notebooks 05-07).
WEIGHTS = {
    "sound2scene_checkpoint": "sound2scene.pth",
    "swav_checkpoint": "swav.pth.tar",
    "icgan_folder": "icgan",
    "inception_weights": "judges/inception.pth",
    "detector_weights": "judges/detector.pt",
    "clip_checkpoint": "judges/clip.pt",
}


def _entry(name: str) -> property:
    """A path inside the run folder, as a read-only attribute."""
    return property(lambda self: self.root / name, doc=f"<folder>/{name}")


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @classmethod
    def of(cls, p) -> RunFolder:
        """The run folder of params `p` (anything with a run_dir)."""
        return cls(p.run_dir)

    # what the run is, and its bookkeeping
    params = _entry("params.yaml")
    manifest = _entry("run.json")
    log = _entry("log.txt")
    kernel_log = _entry("kernel.log")
    stages = _entry("stages.jsonl")
    # what its steps write, in the order they run
    tuples = _entry("tuples.csv")
    protocol = _entry("protocol.json")
    train_params = _entry(".train-params.yaml")
    separation = _entry("separation.json")
    generated = _entry("generated.pt")
    validation = _entry("validation.json")
    beyond = _entry("beyond.json")
    plan = _entry("plan.json")
    results = _entry("results.json")
    # folders
    checkpoints = _entry("checkpoints")
    judges = _entry("checkpoints/judges")  # the synthetic world's judges
    stand_ins_report = _entry("checkpoints/stand_ins.json")  # the stand-ins' held-out checks (notebook 02)
    cache = _entry("cache")
    figures = _entry("figures")
    app = _entry("app")
    data = _entry("data")
    previous = _entry("previous")

    def metrics(self, what: str) -> Path:
        """metrics_<what>.json, `what` one of METRICS."""
        if what not in METRICS:
            raise ValueError(f"no metrics file {what!r}; one of {METRICS}")
        return self.root / f"metrics_{what}.json"

    def weights(self, key: str) -> Path:
        """The default place of a pretrained part (WEIGHTS), for a params key of avgas.params.WEIGHT_KEYS."""
        return self.checkpoints / WEIGHTS[key]

    def figure(self, name: str) -> Path:
        return self.figures / name

    def notebook(self, name: str) -> Path:
        """An executed notebook of the run (its file name, e.g. 01_data.ipynb)."""
        return self.root / name

    def sibling(self, suffix: str) -> RunFolder:
        """The run beside this one named <name><suffix> (a --sweep sibling, e.g. '-g_blend_share0')."""
        return RunFolder(self.root.parent / f"{self.root.name}{suffix}")

    def __fspath__(self) -> str:
        return os.fspath(self.root)


@dataclass(frozen=True)
class DataFolder:
    """The data layout (``data_root``; by default ``<run folder>/data``), and the names in it:

    ``audios``, ``images`` (one ``<stem>.wav`` and one image per clip), ``metadata`` (the default
    metadata csv, params key ``metadata_csv``), ``world`` (world.json: the synthetic world's stamp),
    and prepare-vggsound's records: ``ingest`` (ingest.json), ``archives`` (archives.json: archives
    read to their end), ``skipped`` (skipped.csv: every skipped clip and why), ``fingerprints``
    (fingerprints.json, for duplicates) and ``staging`` (.staging: archive members in flight).
    """

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    audios = _entry("audios")
    images = _entry("images")
    metadata = _entry("metadata.csv")
    world = _entry("world.json")
    ingest = _entry("ingest.json")
    archives = _entry("archives.json")
    skipped = _entry("skipped.csv")
    fingerprints = _entry("fingerprints.json")
    staging = _entry(".staging")

    def audio(self, stem: str) -> Path:
        return self.audios / f"{stem}.wav"

    def image(self, stem: str, suffix: str = ".jpg") -> Path:
        return self.images / f"{stem}{suffix}"

    def __fspath__(self) -> str:
        return os.fspath(self.root)


# Files of a run folder that are bookkeeping, not results: custody never records or verifies them.
BOOKKEEPING = tuple(getattr(RunFolder(Path()), a).name for a in ("manifest", "log", "kernel_log", "stages"))
