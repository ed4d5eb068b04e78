"""Command line: python -m avgas {run,params,check,plan,prepare-vggsound,world,book,validate,train,select,assignments,grade,explore} ...

The CLI is a table (`SUBCOMMANDS`): each subcommand is one row with its help, its flags, the folders
it holds while it writes (custody.COMMANDS says why) and its handler. `main` parses, looks the row
up and turns the errors a user can act on into one line on stderr.

Modules that load torch or pandas (the method, the data, the checks, the book) are imported inside
the handlers that need them, so `python -m avgas --help` and the light commands start at once.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from avgas import app, custody, paths, runner
from avgas import params as params_mod

USAGE = __doc__.splitlines()[0]


def _load(args) -> params_mod.Params:
    p = params_mod.load(args.params, args.p or None)
    # from here on, no write of this process may touch a path the user gave as an input
    params_mod.protect_inputs(p, prepared_data=args.cmd != "prepare-vggsound")
    return p


def _what(args) -> str:
    return f"python -m avgas {args.cmd}"


def _csv(text: str | None) -> list[str] | None:
    """'a, b' -> ['a', 'b'] (None stays None: the flag was not given)."""
    return [s.strip() for s in text.split(",")] if text else None


# ------------------------------------------------------------------------------------ flags


def _params_flags(sp, params_help: str | None = None, optional: bool = False) -> None:
    """The params file and its -p overrides, as most commands that take a params file have them."""
    sp.add_argument("params", nargs="?" if optional else None, help=params_help)
    sp.add_argument("-p", action="append", metavar="KEY=VALUE")


def _run_flags(sp) -> None:
    sp.add_argument("params", help="params file, e.g. params/quick.yaml")
    sp.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    sp.add_argument(
        "--until",
        metavar="NN",
        help="stop after this notebook, e.g. 02 (unlike --only, a finished notebook is still skipped)",
    )
    sp.add_argument("-p", action="append", metavar="KEY=VALUE", help="override a params key (repeatable)")
    sp.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2,...",
        help="one run per value (e.g. seed=0,1,2), each in its own folder <name>-<key><value>; "
        "repeated for several keys, one run per combination (a grid)",
    )
    sp.add_argument(
        "--overwrite",
        action="store_true",
        help="reuse a run folder made with other params (its old notebooks go to previous/)",
    )
    sp.add_argument("--force", action="store_true", help="rerun notebooks even if finished and unchanged")
    sp.add_argument(
        "--print-run-dir", action="store_true", help="validate, print the run folder(s) and stop (for job scripts)"
    )


def _book_flags(sp) -> None:
    sp.add_argument("run_dir", help="a run folder, e.g. runs/default")
    sp.add_argument("--out", help="folder to hold _build/ (default: the project root)")


def _prepare_flags(sp) -> None:
    _params_flags(sp)
    sp.add_argument("--workers", type=int, help="worker processes (default: params ingest_workers)")


def _check_flags(sp) -> None:
    _params_flags(sp)
    sp.add_argument("--all", action="store_true", help="read every clip's audio and image (default: a sample of 50)")


def _plan_flags(sp) -> None:
    _params_flags(sp)
    sp.add_argument(
        "--gpu", default="a100x1,h100x1,h100x4", help="devices to estimate for, DEVICExN,... (e.g. a100x1,h100x4)"
    )


def _validate_flags(sp) -> None:
    sp.add_argument("run_dirs", nargs="+", help="finished run folders, e.g. runs/default runs/default-g_blend_share0.5")


def _select_flags(sp) -> None:
    _params_flags(sp, "params file, e.g. params/quick.yaml")
    sp.add_argument("--only", help="comma-separated settings, e.g. clip_steps,classifier_steps")
    sp.add_argument("--candidates", action="append", metavar="KEY=V1,V2,...", help="other values to try (repeatable)")


def _assignments_flags(sp) -> None:
    sp.add_argument("--out", default="_build/assignments", help="folder to write them to")


def _grade_flags(sp) -> None:
    sp.add_argument("assignment", help="an assignment name (a1_loss) or its built folder")
    sp.add_argument("submissions", nargs="+", help="the students' notebooks (.ipynb); only read")
    sp.add_argument("--out", help="folder for grades.csv (default: the assignment's folder)")


def _explore_flags(sp) -> None:
    sp.add_argument("run_dir", nargs="?", default="runs/default", help="a finished run folder (default runs/default)")
    sp.add_argument("--port", type=int, default=8866)
    sp.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: this machine only)")


# ------------------------------------------------------------- what each command holds (custody)


def _holds_run_dir(args, p) -> list[Path]:
    return [p.run_dir]  # world.generate holds the data folder too, once it is known to be avgas's


def _holds_data_dir(args, p) -> list[Path]:
    return [p.data_dir]


def _holds_selection(args, p) -> list[Path]:
    from avgas import selection  # loads torch

    return [selection.base_params(p).run_dir.parent]


def _holds_run_dirs(args, p) -> list[Path]:
    return [paths.resolve(d) for d in args.run_dirs]


def _holds_one_run_dir(args, p) -> list[Path]:
    return [paths.resolve(args.run_dir)]


def _holds_book(args, p) -> list[Path]:
    return [paths.resolve(args.run_dir), (paths.resolve(args.out) if args.out else paths.project_root()) / "_build"]


def _holds_out(args, p) -> list[Path]:
    return [paths.resolve(args.out)]


def _holds_grades(args, p) -> list[Path]:
    from avgas import course  # loads pandas

    return [course.out_folder(args.assignment, args.out)]


def _holds_nothing(args, p) -> list[Path]:
    return []


# ----------------------------------------------------------------------------------- handlers


def _params_cmd(args) -> int:
    if not args.params:
        print(params_mod.describe())
        return 0
    for k, val in _load(args).to_dict().items():
        print(f"{k}: {val!r}")
    return 0


def _prepare_cmd(args) -> int:
    from avgas import vggsound  # loads torch

    p = _load(args)
    vggsound.check_apart(p)  # inputs overlapping outputs: refused before anything is written, a lock included
    with custody.hold_all(held(args, p), _what(args)):
        r = vggsound.prepare(p, workers=args.workers)
    print(r.summary())
    return 0


def _check_cmd(args) -> int:
    from avgas import check  # loads torch

    table = check.check(_load(args), sample=None if args.all else 50)
    for item, row in table.iterrows():
        print(
            f"[{row['status']:>7}] {item} ({row['params key']}): {row['path']}"
            + (f"\n          {row['detail']}" if row["detail"] else "")
        )
    bad = table[table["status"] != "ok"]
    print(f"\n{len(bad)} problem(s)" if len(bad) else "\neverything is in place")
    return 1 if len(bad) else 0


def _plan_cmd(args) -> int:
    from avgas import plan  # loads torch

    p = _load(args)
    made = plan.make(p, args.gpu)
    with custody.hold_all(held(args, p), _what(args)):
        written = plan.write(p, made)
    print(plan.tables(made) + f"\n\nwritten: {written}")
    return 0


def _book_cmd(args) -> int:
    from avgas import book  # loads pandas

    run_dir, build = held(args)
    with custody.hold(run_dir, _what(args), create=False), custody.hold(build, _what(args)):
        html = book.build(args.run_dir, args.out)
    print(f"book: {html / 'index.html'}")
    return 0


def _validate_cmd(args) -> int:
    from avgas import validation  # separates and scores: the method, torch

    with custody.hold_all(held(args), _what(args), create=False):
        print(validation.compare_runs(args.run_dirs).to_string())
    return 0


def _world_cmd(args) -> int:
    from avgas import world  # loads torch

    p = _load(args)
    world.require_synthetic(p)  # before a folder is made
    with custody.hold_all(held(args, p), f"{_what(args)}, run '{p.name}'"):
        custody.refuse_other_run(p, "`python -m avgas world`")
        info = world.generate(p)
    print(
        f"{info.n_clips} clips in {info.data_dir} ({info.megabytes:.1f} MB, "
        f"{'reused' if info.reused else f'{info.seconds:.1f} s'})"
    )
    return 0


def _train_cmd(args) -> int:
    from avgas import distributed, train  # torch, and torchrun's process group

    p = _load(args)
    w = distributed.launched()  # torchrun's rank (the group is joined in train.train_run)
    lock_held = os.environ.get("AVGAS_LOCK_HELD") or not w.main  # notebook 03 launched it, or a rank > 0
    with contextlib.ExitStack() as stack:
        if not lock_held:
            stack.enter_context(custody.hold_all(held(args, p), f"{_what(args)}, run '{p.name}'"))
            custody.refuse_other_run(p, "`python -m avgas train`")
            stack.enter_context(custody.watch(p.run_dir, "train"))
        trained = train.train_run(p)
    if w.main:
        for name, r in trained.items():
            s = r.summary()
            print(f"{name}: best epoch {s['best_epoch']} of {s['epochs']}, validation loss {s['best_val_loss']}")
        print(f"done: {p.run_dir} ({w.size} process{'es' if w.size > 1 else ''})")
    return 0


def _select_cmd(args) -> int:
    from avgas import selection  # trains candidates: torch

    p = _load(args)
    cands = {}
    for spec in args.candidates or []:
        key, _, values = spec.partition("=")
        cands[key.strip()] = [params_mod.parse_override(f"{key}={v}")[1] for v in values.split(",")]
    with custody.hold_all(held(args, p), _what(args)):
        rec = selection.select(p, args.params, _csv(args.only), cands)
    for k, v in rec["settings"].items():
        print(f"{k}: {v['choice']!r} (candidates {v['candidates']})")
    print(f"record: {selection.record_path(args.params)}; unselected: {rec['unselected'] or 'none'}")
    return 0


def _assignments_cmd(args) -> int:
    from avgas import course  # loads pandas

    with custody.hold_all(held(args), _what(args)):
        built = course.build(args.out)
    for name, folder in built.items():
        print(f"{name}: {folder / 'student' / (name + '.ipynb')} (students), {folder / 'autograder'} (grading)")
    return 0


def _grade_cmd(args) -> int:
    from avgas import course  # loads pandas

    with custody.hold_all(held(args), _what(args)):
        table = course.grade(args.assignment, args.submissions, args.out)
    print(table.to_string(index=False))
    if table.attrs.get("possible"):
        print(f"out of {table.attrs['possible']:g} points; grades.csv written")
    return 0


def _explore_cmd(args) -> int:
    return app.serve(args.run_dir, port=args.port, ip=args.ip)


def _run_cmd(args) -> int:
    runs = [_load(args)]  # validated before anything runs
    if args.sweep:
        runs = params_mod.sweep_grid(runs[0], args.sweep)
    only = _csv(args.only)
    runner.notebooks(only)  # a wrong --only fails before any work too
    runner.last_of(args.until)  # and a wrong --until
    if args.print_run_dir:
        print("\n".join(str(p.run_dir) for p in runs))
        return 0
    for p in runs:  # runner.run holds each run folder (held(args, p)) while it runs
        times = runner.run(p, only, overwrite=args.overwrite, force=args.force, until=args.until)
        for name, sec in times.items():
            print(f"{name}: {sec if isinstance(sec, str) else f'{sec:.1f} s'}")
        print(f"done: {p.run_dir}")
    return 0


# -------------------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Command:
    help: str
    flags: Callable[[argparse.ArgumentParser], None]  # adds the command's arguments
    handle: Callable[[argparse.Namespace], int]  # does the work; returns the exit code
    holds: Callable[[argparse.Namespace, params_mod.Params | None], list[Path]] = _holds_nothing


# In the order `--help` lists them. What each holds, and why, is custody.COMMANDS (a test checks both).
SUBCOMMANDS: dict[str, Command] = {
    "run": Command(
        "execute the numbered notebooks on a params file into runs/<name>/", _run_flags, _run_cmd, _holds_run_dir
    ),
    "params": Command(
        "validate a params file and print the resolved settings; without a file, list every key",
        lambda sp: _params_flags(sp, optional=True),
        _params_cmd,
    ),
    "book": Command(
        "build the Jupyter Book (HTML in _build/html) from a finished run folder", _book_flags, _book_cmd, _holds_book
    ),
    "prepare-vggsound": Command(
        "ingest VGGSound videos into the data layout (resumable)", _prepare_flags, _prepare_cmd, _holds_data_dir
    ),
    "check": Command(
        "check every data path and weight file of a params file, before any work", _check_flags, _check_cmd
    ),
    "plan": Command(
        "clips, tuples, disk, FLOPs, GPU memory and GPU hours of a run, before the GPU",
        _plan_flags,
        _plan_cmd,
        _holds_run_dir,
    ),
    "world": Command("generate the synthetic world of a params file", _params_flags, _world_cmd, _holds_run_dir),
    "validate": Command(
        "CRS of every method on a finished run's *validation* tuples (what settings are chosen on), a column per run",
        _validate_flags,
        _validate_cmd,
        _holds_run_dirs,
    ),
    "train": Command(
        "train the run's separators (notebook 03's training) into its folder; data-parallel under "
        "torchrun: torchrun --nproc_per_node 2 -m avgas train params/quick.yaml",
        lambda sp: _params_flags(sp, "params file of a run whose notebooks 01-02 have finished"),
        _train_cmd,
        _holds_run_dir,
    ),
    "select": Command(
        "choose the instrument settings (G, judges) on validation data, no separator; writes "
        "<params>.selection.json beside the params file",
        _select_flags,
        _select_cmd,
        _holds_selection,
    ),
    "assignments": Command(
        "student notebooks and autograders of the course kit (otter-grader)",
        _assignments_flags,
        _assignments_cmd,
        _holds_out,
    ),
    "grade": Command(
        "grade submissions of one assignment with otter's local grader; writes grades.csv",
        _grade_flags,
        _grade_cmd,
        _holds_grades,
    ),
    "explore": Command(
        "serve the explorer (notebook 09) on a finished run as a web app (Voila)",
        _explore_flags,
        _explore_cmd,
        _holds_one_run_dir,
    ),
}


def held(args, p: params_mod.Params | None = None) -> list[Path]:
    """The folders a command holds while it writes (custody.COMMANDS says why; [] for a command
    that only reads). `p`: the command's params, for those that take a params file."""
    return SUBCOMMANDS[args.cmd].holds(args, p)


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m avgas", description=USAGE)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name, command in SUBCOMMANDS.items():
        command.flags(sub.add_parser(name, help=command.help))
    return ap


def commands() -> list[str]:
    """Every subcommand of the CLI (each must be in custody.COMMANDS: what it holds while it writes)."""
    return list(SUBCOMMANDS)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with custody.on_sigterm():  # SIGTERM stops like Ctrl-C, and says so
        return _main(args)


def _main(args) -> int:
    try:
        return SUBCOMMANDS[args.cmd].handle(args)
    except params_mod.ParamsError as e:
        print(f"avgas: params error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = "SIGTERM" if isinstance(e, custody.Terminated) else "Ctrl-C"
        print(f"avgas: interrupted ({how}); nothing half-written is kept. {_continue_hint(args)}", file=sys.stderr)
        return 143 if how == "SIGTERM" else 1
    except Exception as e:  # a clear one-line message for our own errors, full trace otherwise
        message = _one_line(e, args)
        if message is None:
            raise
        print(f"avgas: {message}", file=sys.stderr)
        return 1


def _continue_hint(args) -> str:
    if getattr(args, "cmd", None) == "run":
        return (
            "Run the same command again to continue: finished notebooks are skipped, and "
            "-p resume=true continues a separator's training from its last epoch."
        )
    if getattr(args, "cmd", None) == "prepare-vggsound":
        return "Run the same command again to continue: ingested clips are not redone."
    return "Run the same command again."


# The errors a user can act on, by the module that defines them. An error of a module that was never
# imported cannot have been raised, so they are looked up in sys.modules rather than imported
# (importing avgas.data or avgas.spectrogram would load torch for every command). Hence the defining
# module, never one that re-exports the class: a command that does not import the re-exporter would
# show a traceback (tests/test_cli_errors.py checks).
USER_ERRORS = (
    ("avgas.runner", "RunError"),
    ("avgas.layout", "DataError"),  # data.DataError is this class
    ("avgas.spectrogram", "AudioError"),
    ("avgas.book", "BookError"),
    ("avgas.checkpoints", "CheckpointError"),
    ("avgas.custody", "CustodyError"),
    ("avgas.custody", "ProtectedPathError"),
    ("avgas.course", "CourseError"),
    ("avgas.ranks", "LaunchError"),  # distributed.LaunchError is this class
    ("avgas.selection", "SelectionError"),
)


def user_error_types() -> tuple[type[Exception], ...]:
    """The classes of USER_ERRORS whose modules are loaded."""
    return tuple(getattr(sys.modules[m], name) for m, name in USER_ERRORS if m in sys.modules)


def _one_line(e: Exception, args) -> str | None:
    """The message for an error a user can act on, or None for a bug (shown with its traceback)."""
    if isinstance(e, user_error_types()):
        return " ".join(str(e).split("\n")[0].split()) if isinstance(e, custody.ProtectedPathError) else str(e)
    if isinstance(e, OSError):  # a read-only folder, a full disk, a file that went away
        return paths.os_error_message(e) + (f" {_continue_hint(args)}" if paths.disk_full(e) else "")
    if isinstance(e, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8"
    return None


if __name__ == "__main__":
    sys.exit(main())
