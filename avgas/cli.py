"""Command line: python -m avgas {run,params,check,plan,prepare-vggsound,world,book,validate,train,select,assignments,grade,explore} ..."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from avgas import custody
from avgas import params as params_mod


def _load(args) -> params_mod.Params:
    p = params_mod.load(args.params, args.p or None)
    # from here on, no write of this process may touch a path the user gave as an input
    params_mod.protect_inputs(p, prepared_data=args.cmd != "prepare-vggsound")
    return p


def held(args, p: params_mod.Params | None = None) -> list[Path]:
    """The folders a command holds while it writes (custody.COMMANDS says why; [] for a command
    that only reads). `p`: the command's params, for those that take a params file."""
    from avgas import paths

    cmd = args.cmd
    # world.generate holds the data folder too, once it is known to be avgas's; plan writes plan.json
    if cmd in ("run", "world", "train", "plan"):
        return [p.run_dir]
    if cmd == "prepare-vggsound":
        return [p.data_dir]
    if cmd == "select":
        from avgas import selection

        return [selection.base_params(p).run_dir.parent]
    if cmd == "validate":
        return [paths.resolve(d) for d in args.run_dirs]
    if cmd == "explore":
        return [paths.resolve(args.run_dir)]
    if cmd == "book":
        return [paths.resolve(args.run_dir), (paths.resolve(args.out) if args.out else paths.project_root()) / "_build"]
    if cmd == "assignments":
        return [paths.resolve(args.out)]
    if cmd == "grade":
        from avgas import course

        return [course.out_folder(args.assignment, args.out)]
    return []


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m avgas", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="execute the numbered notebooks on a params file into runs/<name>/")
    r.add_argument("params", help="params file, e.g. params/quick.yaml")
    r.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    r.add_argument("-p", action="append", metavar="KEY=VALUE", help="override a params key (repeatable)")
    r.add_argument(
        "--sweep",
        action="append",
        metavar="KEY=V1,V2,...",
        help="one run per value (e.g. seed=0,1,2), each in its own folder <name>-<key><value>; "
        "repeated for several keys, one run per combination (a grid)",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="reuse a run folder made with other params (its old notebooks go to previous/)",
    )
    r.add_argument("--force", action="store_true", help="rerun notebooks even if finished and unchanged")
    r.add_argument(
        "--print-run-dir", action="store_true", help="validate, print the run folder(s) and stop (for job scripts)"
    )

    v = sub.add_parser(
        "params", help="validate a params file and print the resolved settings; without a file, list every key"
    )
    v.add_argument("params", nargs="?")
    v.add_argument("-p", action="append", metavar="KEY=VALUE")

    b = sub.add_parser("book", help="build the Jupyter Book (HTML in _build/html) from a finished run folder")
    b.add_argument("run_dir", help="a run folder, e.g. runs/default")
    b.add_argument("--out", help="folder to hold _build/ (default: the project root)")

    g = sub.add_parser("prepare-vggsound", help="ingest VGGSound videos into the data layout (resumable)")
    g.add_argument("params")
    g.add_argument("-p", action="append", metavar="KEY=VALUE")
    g.add_argument("--workers", type=int, help="worker processes (default: params ingest_workers)")

    c = sub.add_parser("check", help="check every data path and weight file of a params file, before any work")
    c.add_argument("params")
    c.add_argument("-p", action="append", metavar="KEY=VALUE")
    c.add_argument("--all", action="store_true", help="read every clip's audio and image (default: a sample of 50)")

    pl = sub.add_parser("plan", help="clips, tuples, disk, FLOPs, GPU memory and GPU hours of a run, before the GPU")
    pl.add_argument("params")
    pl.add_argument("-p", action="append", metavar="KEY=VALUE")
    pl.add_argument(
        "--gpu", default="a100x1,h100x1,h100x4", help="devices to estimate for, DEVICExN,... (e.g. a100x1,h100x4)"
    )

    w = sub.add_parser("world", help="generate the synthetic world of a params file")
    w.add_argument("params")
    w.add_argument("-p", action="append", metavar="KEY=VALUE")

    va = sub.add_parser(
        "validate",
        help="CRS of every method on a finished run's *validation* tuples (what "
        "settings are chosen on), a column per run",
    )
    va.add_argument("run_dirs", nargs="+", help="finished run folders, e.g. runs/default runs/default-g_blend_share0")

    t = sub.add_parser(
        "train",
        help="train the run's separators (notebook 03's training) into its folder; data-parallel under "
        "torchrun: torchrun --nproc_per_node 2 -m avgas train params/quick.yaml",
    )
    t.add_argument("params", help="params file of a run whose notebooks 01-02 have finished")
    t.add_argument("-p", action="append", metavar="KEY=VALUE")

    se = sub.add_parser(
        "select",
        help="choose the instrument settings (G, judges) on validation data, no separator; writes "
        "<params>.selection.json beside the params file",
    )
    se.add_argument("params", help="params file, e.g. params/quick.yaml")
    se.add_argument("-p", action="append", metavar="KEY=VALUE")
    se.add_argument("--only", help="comma-separated settings, e.g. clip_steps,classifier_steps")
    se.add_argument("--candidates", action="append", metavar="KEY=V1,V2,...", help="other values to try (repeatable)")

    a = sub.add_parser("assignments", help="student notebooks and autograders of the course kit (otter-grader)")
    a.add_argument("--out", default="_build/assignments", help="folder to write them to")

    gr = sub.add_parser(
        "grade", help="grade submissions of one assignment with otter's local grader; writes grades.csv"
    )
    gr.add_argument("assignment", help="an assignment name (a1_loss) or its built folder")
    gr.add_argument("submissions", nargs="+", help="the students' notebooks (.ipynb); only read")
    gr.add_argument("--out", help="folder for grades.csv (default: the assignment's folder)")

    ex = sub.add_parser("explore", help="serve the explorer (notebook 09) on a finished run as a web app (Voila)")
    ex.add_argument("run_dir", nargs="?", default="runs/default", help="a finished run folder (default runs/default)")
    ex.add_argument("--port", type=int, default=8866)
    ex.add_argument("--ip", default="127.0.0.1", help="address to listen on (default: this machine only)")

    return ap


def commands() -> list[str]:
    """Every subcommand of the CLI (each must be in custody.COMMANDS: what it holds while it writes)."""
    ap = parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with custody.on_sigterm():  # SIGTERM stops like Ctrl-C, and says so
        return _main(args)


def _main(args) -> int:
    what = f"python -m avgas {args.cmd}"
    try:
        if args.cmd == "params":
            if not args.params:
                print(params_mod.describe())
                return 0
            p = _load(args)
            for k, val in p.to_dict().items():
                print(f"{k}: {val!r}")
            return 0
        if args.cmd == "prepare-vggsound":
            from avgas import vggsound

            p = _load(args)
            vggsound.check_apart(p)  # inputs overlapping outputs: refused before anything is written, a lock included
            with custody.hold_all(held(args, p), what):
                r = vggsound.prepare(p, workers=args.workers)
            print(r.summary())
            return 0
        if args.cmd == "check":
            from avgas import check

            table = check.check(_load(args), sample=None if args.all else 50)
            for item, row in table.iterrows():
                print(
                    f"[{row['status']:>7}] {item} ({row['params key']}): {row['path']}"
                    + (f"\n          {row['detail']}" if row["detail"] else "")
                )
            bad = table[table["status"] != "ok"]
            print(f"\n{len(bad)} problem(s)" if len(bad) else "\neverything is in place")
            return 1 if len(bad) else 0
        if args.cmd == "plan":
            from avgas import plan

            p = _load(args)
            made = plan.make(p, args.gpu)
            with custody.hold_all(held(args, p), what):
                written = plan.write(p, made)
            print(plan.tables(made) + f"\n\nwritten: {written}")
            return 0
        if args.cmd == "book":
            from avgas import book

            run_dir, build = held(args)
            with custody.hold(run_dir, what, create=False), custody.hold(build, what):
                html = book.build(args.run_dir, args.out)
            print(f"book: {html / 'index.html'}")
            return 0
        if args.cmd == "validate":
            from avgas import validation

            with custody.hold_all(held(args), what, create=False):
                print(validation.compare_runs(args.run_dirs).to_string())
            return 0
        if args.cmd == "world":
            from avgas import world

            p = _load(args)
            world.require_synthetic(p)  # before a folder is made
            with custody.hold_all(held(args, p), f"{what}, run '{p.name}'"):
                custody.refuse_other_run(p, "`python -m avgas world`")
                info = world.generate(p)
            print(
                f"{info.n_clips} clips in {info.data_dir} ({info.megabytes:.1f} MB, "
                f"{'reused' if info.reused else f'{info.seconds:.1f} s'})"
            )
            return 0
        if args.cmd == "train":
            import contextlib
            import os

            from avgas import distributed, train

            p = _load(args)
            w = distributed.launched()  # torchrun's rank (the group is joined in train.train_run)
            lock_held = os.environ.get("AVGAS_LOCK_HELD") or not w.main  # notebook 03 launched it, or a rank > 0
            with contextlib.nullcontext() if lock_held else custody.hold_all(held(args, p), f"{what}, run '{p.name}'"):
                if not lock_held:
                    custody.refuse_other_run(p, "`python -m avgas train`")
                with custody.watch(p.run_dir, "train") if not lock_held else contextlib.nullcontext():
                    trained = train.train_run(p)
            if w.main:
                for name, r in trained.items():
                    s = r.summary()
                    print(
                        f"{name}: best epoch {s['best_epoch']} of {s['epochs']}, validation loss {s['best_val_loss']}"
                    )
                print(f"done: {p.run_dir} ({w.size} process{'es' if w.size > 1 else ''})")
            return 0
        if args.cmd == "select":
            from avgas import selection

            p = _load(args)
            cands = {}
            for spec in args.candidates or []:
                key, _, values = spec.partition("=")
                cands[key.strip()] = [params_mod.parse_override(f"{key}={v}")[1] for v in values.split(",")]
            only = [k.strip() for k in args.only.split(",")] if args.only else None
            with custody.hold_all(held(args, p), what):
                rec = selection.select(p, args.params, only, cands)
            for k, v in rec["settings"].items():
                print(f"{k}: {v['choice']!r} (candidates {v['candidates']})")
            print(f"record: {selection.record_path(args.params)}; unselected: {rec['unselected'] or 'none'}")
            return 0
        if args.cmd == "assignments":
            from avgas import course

            with custody.hold_all(held(args), what):
                built = course.build(args.out)
            for name, folder in built.items():
                print(f"{name}: {folder / 'student' / (name + '.ipynb')} (students), {folder / 'autograder'} (grading)")
            return 0
        if args.cmd == "grade":
            from avgas import course

            with custody.hold_all(held(args), what):
                table = course.grade(args.assignment, args.submissions, args.out)
            print(table.to_string(index=False))
            if table.attrs.get("possible"):
                print(f"out of {table.attrs['possible']:g} points; grades.csv written")
            return 0
        if args.cmd == "explore":
            from avgas import app

            return app.serve(args.run_dir, port=args.port, ip=args.ip)
        if args.cmd == "run":
            from avgas import runner

            runs = [_load(args)]  # validated before anything runs
            if args.sweep:
                runs = params_mod.sweep_grid(runs[0], args.sweep)
            only = [s.strip() for s in args.only.split(",")] if args.only else None
            runner.notebooks(only)  # a wrong --only fails before any work too
            if args.print_run_dir:
                print("\n".join(str(p.run_dir) for p in runs))
                return 0
            for p in runs:  # runner.run holds each run folder (held(args, p)) while it runs
                times = runner.run(p, only, overwrite=args.overwrite, force=args.force)
                for name, sec in times.items():
                    print(f"{name}: {sec if isinstance(sec, str) else f'{sec:.1f} s'}")
                print(f"done: {p.run_dir}")
            return 0
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
    return 0


def _continue_hint(args) -> str:
    if getattr(args, "cmd", None) == "run":
        return (
            "Run the same command again to continue: finished notebooks are skipped, and "
            "-p resume=true continues a separator's training from its last epoch."
        )
    if getattr(args, "cmd", None) == "prepare-vggsound":
        return "Run the same command again to continue: ingested clips are not redone."
    return "Run the same command again."


def _one_line(e: Exception, args) -> str | None:
    """The message for an error a user can act on, or None for a bug (shown with its traceback)."""
    from avgas import paths
    from avgas.book import BookError
    from avgas.checkpoints import CheckpointError
    from avgas.course import CourseError
    from avgas.custody import CustodyError, ProtectedPathError
    from avgas.data import DataError
    from avgas.distributed import LaunchError
    from avgas.runner import RunError
    from avgas.selection import SelectionError
    from avgas.spectrogram import AudioError

    if isinstance(
        e,
        (
            RunError,
            DataError,
            AudioError,
            BookError,
            CheckpointError,
            CustodyError,
            ProtectedPathError,
            CourseError,
            LaunchError,
            SelectionError,
        ),
    ):
        return " ".join(str(e).split("\n")[0].split()) if isinstance(e, ProtectedPathError) else str(e)
    if isinstance(e, OSError):  # a read-only folder, a full disk, a file that went away
        return paths.os_error_message(e) + (f" {_continue_hint(args)}" if paths.disk_full(e) else "")
    if isinstance(e, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({e.reason} at byte {e.start}); save it as UTF-8"
    return None


if __name__ == "__main__":
    sys.exit(main())
