"""Issue 23: every command that writes goes through avgas.custody (the folder's lock, input
protection, the artifact record); a run's own files are checked whole against the record."""

import hashlib
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SMALL

from avgas import cli, custody, params, runner, world

ROOT = Path(__file__).resolve().parent.parent


def _digest(folder: Path) -> dict:
    return {
        str(f.relative_to(folder)): hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted(folder.rglob("*"))
        if f.is_file() and f.name != custody.LOCK
    }


def _small(tmp_path, **kw):
    over = {**SMALL, "run_root": str(tmp_path), "name": "t", **kw}
    return [f"{k}={v}" for k, v in over.items()]


def _main(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    return rc, capsys.readouterr().err


# ------------------------------------------------------------------------- items 1 and 2: world


def test_world_on_a_finished_run_with_other_params_is_refused_and_its_data_is_untouched(tmp_path, capsys):
    over = sum((["-p", o] for o in _small(tmp_path)), [])
    assert _main(["world", "params/quick.yaml", *over], capsys)[0] == 0
    p = params.load("params/quick.yaml", _small(tmp_path))
    params.save(p, p.run_dir / "params.yaml")  # what a run leaves: its params and a manifest
    (p.run_dir / "run.json").write_text('{"notebooks": {"01_data": {"status": "finished"}}}')
    before = _digest(p.run_dir)
    changed = sum((["-p", o] for o in _small(tmp_path, clips_per_class=7)), [])
    rc, err = _main(["world", "params/quick.yaml", *changed], capsys)
    assert rc == 1 and "other params" in err and "clips_per_class: 6 -> 7" in err and "-p name=" in err, err
    assert _digest(p.run_dir) == before


def test_world_into_a_running_run_is_refused_by_the_lock(tmp_path, capsys):
    p = params.load("params/quick.yaml", _small(tmp_path))
    with _held_elsewhere(p.run_dir):
        rc, err = _main(["world", "params/quick.yaml", *sum((["-p", o] for o in _small(tmp_path)), [])], capsys)
    assert rc == 1 and "in use by another avgas process" in err, err
    assert not (p.data_dir / "audios").exists()


def test_a_users_metadata_csv_is_never_replaced_by_the_synthetic_world(tmp_path, capsys):
    data = tmp_path / "mine"
    (data / "audios").mkdir(parents=True)
    csv = data / "metadata.csv"
    csv.write_text("abc,0,hail,train\n")
    before = csv.read_bytes()
    rc, err = _main(
        ["world", "params/quick.yaml", *sum((["-p", o] for o in _small(tmp_path, data_root=str(data))), [])], capsys
    )
    assert rc == 1 and "did not generate" in err and "metadata.csv" in err, err
    assert csv.read_bytes() == before and not any((data / "audios").iterdir())


def test_a_damaged_world_file_is_regenerated_not_reused(small_params):
    world.generate(small_params, progress=False)
    wav = sorted((small_params.data_dir / "audios").iterdir())[3]
    good = wav.read_bytes()
    wav.write_bytes(good[:100])
    assert [d.path for d in custody.verify(small_params.data_dir)] == [f"audios/{wav.name}"]
    info = world.generate(small_params, progress=False)
    assert not info.reused and wav.read_bytes() == good


# ------------------------------------------------------------- every command goes through custody


def _held_elsewhere(folder: Path):
    """Hold a folder's lock from another process (this one may nest its own holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, sys, time; f = open(sys.argv[1], 'a+'); fcntl.flock(f, fcntl.LOCK_EX); "
        'f.seek(0); f.truncate(); f.write(\'{"what": "a test", "pid": 1}\'); f.flush(); '
        "print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder / custody.LOCK)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"

    class _Ctx:
        def __enter__(self):
            return proc

        def __exit__(self, *exc):
            proc.kill()
            proc.wait()

    return _Ctx()


def _commands(tmp_path) -> dict[str, list[str]]:
    """A command line for every command the CLI has (a new command must get one here)."""
    p = ["params/quick.yaml", "-p", f"run_root={tmp_path}", "-p", "name=r"]
    run_dir = tmp_path / "r"
    return {
        "run": ["run", *p],
        "world": ["world", *p],
        "train": ["train", *p],
        "prepare-vggsound": ["prepare-vggsound", "params/vggsound.yaml", "-p", f"data_root={tmp_path / 'v'}"],
        "validate": ["validate", str(run_dir)],
        "explore": ["explore", str(run_dir)],
        "book": ["book", str(run_dir), "--out", str(tmp_path / "b")],
        "assignments": ["assignments", "--out", str(tmp_path / "a")],
        "grade": ["grade", "a1_loss", str(tmp_path / "s.ipynb"), "--out", str(tmp_path / "g")],
        "params": ["params", "params/quick.yaml"],
        "check": ["check", "params/quick.yaml"],
        "plan": ["plan", *p],
        "select": ["select", *p, "--only", "clip_steps", "--candidates", "clip_steps=1"],
    }


def test_every_command_is_classified_in_the_custody_table():
    parser_cmds = set(cli.commands())
    assert parser_cmds == set(custody.COMMANDS), (
        "a command of the CLI is missing from custody.COMMANDS (say what it holds, or None if it only reads): "
        f"{sorted(parser_cmds ^ set(custody.COMMANDS))}"
    )


def test_every_command_that_writes_takes_the_lock_of_each_folder_it_writes(tmp_path, capsys):
    lines = _commands(tmp_path)
    assert set(lines) == set(custody.COMMANDS), "give the new command a command line in _commands()"
    for cmd, how in custody.COMMANDS.items():
        if how is None:
            continue
        argv = lines[cmd]
        args = cli.parser().parse_args(argv)
        p = cli._load(args) if getattr(args, "params", None) else None
        folders = cli.held(args, p)
        assert folders, f"{cmd} writes but holds no folder (cli.held)"
        for folder in folders:
            with _held_elsewhere(folder):
                rc, err = _main(argv, capsys)
            assert rc == 1 and "in use by another avgas process" in err, (cmd, folder, rc, err)


def test_a_command_that_writes_nothing_leaves_no_folder_behind(tmp_path, capsys):
    """A refused command once left runs/<name>-select/.avgas.lock (and runs/) in the checkout:
    the folders a lock made are removed again when nothing else was written in them."""
    root = tmp_path / "runs"
    rc, err = _main(["select", "params/quick.yaml", "-p", f"run_root={root}", "--only", "epochs"], capsys)
    assert rc == 1 and "epochs" in err
    assert not root.exists(), sorted(str(f) for f in root.rglob("*"))
    with custody.hold(root / "kept", "a test"):
        (root / "kept" / "out.txt").write_text("x")  # a folder that holds a written file stays
    with custody.hold(tmp_path, "a test"):  # a folder that was there before stays
        pass
    assert sorted(f.name for f in (root / "kept").iterdir()) == [custody.LOCK, "out.txt"] and tmp_path.is_dir()


def test_a_lock_file_removed_between_open_and_lock_is_not_the_one_held(tmp_path):
    """A holder that ends removes the lock file it made (_tidy). A process that opened that file
    just before must not hold it: it locks the file at the path instead, so a third is refused."""
    folder = tmp_path / "r"
    lock = folder / custody.LOCK
    f = custody._open_lock(folder, lock)
    lock.unlink()  # what an ending holder did between this open and this lock
    custody._flock(f, lock)
    assert os.path.samestat(os.fstat(f.fileno()), os.stat(lock))
    with pytest.raises(custody.BusyError), custody.hold(folder, "a third"):
        pass
    f.close()


# ------------------------------------------------------------------------------ the record (3)


def test_a_watched_step_records_what_it_wrote_and_verify_names_damage(tmp_path):
    with custody.watch(tmp_path, "01_data"):
        (tmp_path / "a.bin").write_bytes(b"x" * 100)
        (tmp_path / "sub").mkdir()
        (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 10)
    os.link(tmp_path / "a.bin", tmp_path / "linked.bin")  # a hard link (the instrument store) verifies too
    custody.record(tmp_path, tmp_path / "linked.bin", "instrument")
    rec = custody.read_record(tmp_path)
    assert set(rec) == {"a.bin", "sub/b.bin", "linked.bin"} and rec["sub/b.bin"]["writer"] == "01_data"
    assert custody.verify(tmp_path) == []
    (tmp_path / "sub" / "b.bin").write_bytes(b"y" * 9)
    (tmp_path / "a.bin").write_bytes(b"z" * 100)  # same size, other bytes
    assert [(d.path, d.writer) for d in custody.verify(tmp_path)] == [
        ("a.bin", "01_data"),
        ("linked.bin", "instrument"),
        ("sub/b.bin", "01_data"),
    ]


def test_replacing_a_file_avgas_did_not_write_is_refused(tmp_path):
    (tmp_path / "theirs.txt").write_text("mine")
    with pytest.raises(custody.ForeignFileError, match="did not write"):
        custody.refuse_foreign(tmp_path, [tmp_path / "theirs.txt"], "a test")
    custody.record(tmp_path, tmp_path / "theirs.txt", "a test")
    custody.refuse_foreign(tmp_path, [tmp_path / "theirs.txt"], "a test")  # now avgas's own


@pytest.fixture
def finished_run(tmp_path, request):
    """A copy of a finished quick run: AVGAS_TEST_QUICK_RUN, or this checkout's runs/quick; a slow
    test makes one (the session's quick_run) when there is none, a fast one is skipped."""
    src = Path(os.environ.get("AVGAS_TEST_QUICK_RUN") or ROOT / "runs" / "quick")
    done = runner.read_manifest(src).get("notebooks", {}) if (src / "results.json").is_file() else {}
    current = all(done.get(nb.stem, {}).get("source") == runner.source_hash(nb) for nb in runner.notebooks())
    if not current:  # none, or made by older notebooks: a rerun would execute them, not skip
        if request.node.get_closest_marker("slow") is None:
            pytest.skip(f"no finished quick run at {src} (set AVGAS_TEST_QUICK_RUN, or run the slow tests)")
        src = Path(request.getfixturevalue("quick_run"))
    dst = tmp_path / "quick"
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns(custody.LOCK))
    return dst


def _truncate_some(run_dir: Path, n: int, seed: int) -> list[str]:
    rec = custody.read_record(run_dir)
    # any file its notebooks wrote (params.yaml is the runner's own: rewritten before any check)
    picks = random.Random(seed).sample(
        sorted(r for r, e in rec.items() if e["size"] > 0 and e["writer"][:2].isdigit()), n
    )
    for r in picks:
        f = run_dir / r
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return picks


def _quick_params(run_dir: Path):
    return params.load(run_dir / "params.yaml", {"run_root": str(run_dir.parent), "name": run_dir.name})


def test_truncated_files_of_a_finished_run_are_named_by_check_and_by_a_rerun(finished_run, monkeypatch, capsys):
    """The whole rerun path, with the notebooks' execution stubbed (the slow test below executes)."""
    import papermill

    from avgas import check

    executed = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda nb, out, **kw: executed.append(Path(nb).stem))
    p = _quick_params(finished_run)
    assert all(t == "skipped" for t in runner.run(p, progress=False).values())  # records the older run
    assert executed == [] and custody.verify(finished_run) == []
    picks = _truncate_some(finished_run, 5, seed=int(time.time()) % 1000)
    rec = custody.read_record(finished_run)
    detail = " ".join(check.check(p)["detail"])
    for r in picks:
        assert r in detail, (r, detail[-2000:])
    capsys.readouterr()
    runner.run(p, progress=False)
    err, log = capsys.readouterr().err, (finished_run / "log.txt").read_text()
    first = min(rec[r]["writer"] for r in picks)
    assert executed == [nb.stem for nb in runner.notebooks() if nb.stem >= first]
    for r in picks:
        assert f"{r} is damaged" in err and f"{r} is damaged" in log
        assert not (finished_run / r).exists()  # set aside, so its notebook writes it again
        assert list((finished_run / "previous").glob(f"damaged-*/{r}"))


@pytest.mark.slow
def test_a_plain_rerun_repairs_a_truncated_file_by_running_its_notebook(finished_run):
    m = runner.read_manifest(finished_run)
    runner._adopt(finished_run, m)  # a run from before the record: recorded first
    rec = custody.read_record(finished_run)
    late = sorted(r for r, e in rec.items() if e["writer"][:2].isdigit() and e["writer"] >= "06" and e["size"] > 0)
    pick = random.Random(int(time.time())).choice(late)
    (finished_run / pick).write_bytes(b"")
    r = subprocess.run(
        [sys.executable, "-m", "avgas", "run", str(finished_run / "params.yaml"), "-p", "threads=1"]
        + ["-p", f"run_root={finished_run.parent}", "-p", f"name={finished_run.name}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"{pick} is damaged" in r.stderr and f"{rec[pick]['writer']} runs again" in r.stderr
    assert f"{pick} is damaged" in (finished_run / "log.txt").read_text()
    assert custody.verify(finished_run) == [], pick
    after = custody.read_record(finished_run)
    if pick.startswith("cache/") and pick not in after:
        # scratch its notebook no longer needs (the detector's training set, when the detector is
        # taken from the run or the store): it stays set aside and the record forgets it
        assert not (finished_run / pick).exists() and list((finished_run / "previous").glob(f"damaged-*/{pick}"))
    else:
        assert (finished_run / pick).stat().st_size > 0, pick
