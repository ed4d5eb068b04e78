"""Command line: python -m avgas {run,params,world} ..."""
from __future__ import annotations

import argparse
import sys

from avgas import params as params_mod


def _load(args) -> params_mod.Params:
    return params_mod.load(args.params, args.p or None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m avgas", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("run", help="execute the numbered notebooks on a params file into runs/<name>/")
    r.add_argument("params", help="params file, e.g. params/quick.yaml")
    r.add_argument("--only", help="comma-separated notebook numbers, e.g. 01,02")
    r.add_argument("-p", action="append", metavar="KEY=VALUE", help="override a params key (repeatable)")

    v = sub.add_parser("params", help="validate a params file and print the resolved settings; "
                                      "without a file, list every key")
    v.add_argument("params", nargs="?")
    v.add_argument("-p", action="append", metavar="KEY=VALUE")

    w = sub.add_parser("world", help="generate the synthetic world of a params file")
    w.add_argument("params")
    w.add_argument("-p", action="append", metavar="KEY=VALUE")

    args = ap.parse_args(argv)
    try:
        if args.cmd == "params":
            if not args.params:
                print(params_mod.describe())
                return 0
            p = _load(args)
            for k, val in p.to_dict().items():
                print(f"{k}: {val!r}")
            return 0
        if args.cmd == "world":
            from avgas import world
            info = world.generate(_load(args))
            print(f"{info.n_clips} clips in {info.data_dir} ({info.megabytes:.1f} MB, "
                  f"{'reused' if info.reused else f'{info.seconds:.1f} s'})")
            return 0
        if args.cmd == "run":
            from avgas import runner
            p = _load(args)  # validated before anything runs
            only = [s.strip() for s in args.only.split(",")] if args.only else None
            times = runner.run(p, only)
            for name, sec in times.items():
                print(f"{name}: {sec:.1f} s")
            print(f"done: {p.run_dir}")
            return 0
    except params_mod.ParamsError as e:
        print(f"avgas: params error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a clear one-line message for our own errors, full trace otherwise
        from avgas.data import DataError
        from avgas.runner import RunError
        from avgas.spectrogram import AudioError
        if isinstance(e, (RunError, DataError, AudioError)):
            print(f"avgas: {e}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
