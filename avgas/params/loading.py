"""Reading a run's settings: the YAML file, the -p overrides and --sweep, each checked against
the schema (:mod:`avgas.params.schema`) before any work, with an error naming the file and the
key; and the write protection of every input path the settings name.
"""

from __future__ import annotations

import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from avgas import paper, paths
from avgas.params.schema import FIELDS, HINTS, INPUT_KEYS, Params, ParamsError, type_name


def _check_type(key: str, value: Any, tp, where: str) -> Any:
    """Return the value (ints widened to float where a float is wanted) or raise ParamsError."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(tp):
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _check_type(key, value, inner, where)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{where}: '{key}' is {value!r}; allowed values: " + ", ".join(map(repr, allowed)))
        return value
    if tp is float and isinstance(value, str):
        # YAML 1.1 reads `1e-3` (no dot) as a string; a number written that way is still a number
        try:
            value = float(value.strip())
        except ValueError:
            pass
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        dict: lambda v: isinstance(v, dict),
        list: lambda v: isinstance(v, list),
    }[tp](value)
    if not ok:
        raise ParamsError(f"{where}: '{key}' must be {type_name(tp)}, got {value!r} ({type(value).__name__})")
    if tp is float and not math.isfinite(value):
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be a finite number")
    return float(value) if tp is float else value


def _check_rules(key: str, value: Any, where: str) -> None:
    if value is None:
        return
    meta = FIELDS[key].metadata
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be >= {meta['min']}")
    if "max" in meta and value > meta["max"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; it must be <= {meta['max']}")
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(f"{where}: '{key}' is {value!r}; allowed values: {meta['choices']}")
    if "items" in meta:
        bad = [v for v in value if v not in meta["items"]]
        if bad or not value or len(set(value)) != len(value):
            raise ParamsError(
                f"{where}: '{key}' is {value!r}; it must be a non-empty list of distinct values from {meta['items']}"
            )
    if "pattern" in meta:
        if not re.match(meta["pattern"], value):
            raise ParamsError(f"{where}: '{key}' is {value!r}; it must match {meta['pattern']}")


def _check_combinations(combos: dict, world: str, where: str) -> None:
    if not combos:
        raise ParamsError(f"{where}: 'combinations' is empty; give background -> [foregrounds]")
    for bg, fgs in combos.items():
        if not isinstance(fgs, list) or not fgs or not all(isinstance(x, str) for x in fgs):
            raise ParamsError(
                f"{where}: 'combinations' entry {bg!r} must map to a non-empty list of "
                f"foreground class names, got {fgs!r}"
            )
        if world == "synthetic":  # the synthetic world knows only the paper's classes
            known_bg, known_fg = paper.background_classes(), paper.foreground_classes()
            if bg not in known_bg:
                raise ParamsError(
                    f"{where}: 'combinations' background {bg!r} is not a class of the "
                    f"synthetic world; allowed backgrounds: {known_bg}"
                )
            for fg in fgs:
                if fg not in known_fg:
                    raise ParamsError(
                        f"{where}: 'combinations' foreground {fg!r} (under {bg!r}) is not "
                        f"a class of the synthetic world; allowed foregrounds: {known_fg}"
                    )


# The weight files and folders a run reads: the three pretrained parts and the real run's judges.


def _check_inputs_apart(p: "Params", where: str) -> None:
    """The prepared metadata csv (an output of prepare-vggsound) must not be one of its inputs:
    writing it would overwrite VGGSound's csv or the frame json."""
    out = p.metadata_path
    for key in ("vggsound_csv", "frames_json"):
        value = getattr(p, key)
        if value and paths.overlap(paths.resolve(value), out):
            raise ParamsError(
                f"{where}: '{key}' ({value}) and the prepared metadata csv ({out}, params key "
                f"'metadata_csv') are the same file; prepare-vggsound writes the latter, so "
                f"give it another path, e.g. metadata_csv: <data_root>/metadata.csv"
            )


def protect_inputs(p: "Params", prepared_data: bool = True) -> None:
    """Register every input path of `p` so that no avgas write can touch it (paths.guard); with
    `prepared_data`, the prepared VGGSound folder too (an input of every step but ingestion)."""
    for key in INPUT_KEYS:
        value = getattr(p, key)
        if value and (key != "clip_model" or str(value).endswith(".json")):
            paths.protect(paths.resolve(value), key)
    if prepared_data and p.world == "vggsound":  # only prepare-vggsound writes the prepared data
        paths.protect(p.data_dir, "data_root")
        paths.protect(p.metadata_path, "metadata_csv")


def _unknown_key(key: str, where: str) -> ParamsError:
    near = difflib.get_close_matches(key, FIELDS, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return ParamsError(f"{where}: unknown key '{key}'{hint}. Allowed keys: " + ", ".join(FIELDS))


def validate(raw: dict, source: str) -> Params:
    values = {}
    for key, value in raw.items():
        where = source
        if key not in FIELDS:
            raise _unknown_key(key, where)
        value = _check_type(key, value, HINTS[key], where)
        _check_rules(key, value, where)
        values[key] = value
    p = Params(**values)
    if p.combinations is not None:
        _check_combinations(p.combinations, p.world, source)
    _check_inputs_apart(p, source)
    n_combos = len(p.groups())
    if not n_combos:
        raise ParamsError(
            f"{source}: 'sources' is {p.sources}, but no background of 'combinations' has {p.sources - 1} "
            "foregrounds with distinct prompts; use fewer sources or list more foregrounds"
        )
    what = "combinations" if p.sources == 2 else f"{p.sources}-class groups"
    for key in ("train_tuples", "val_tuples", "test_tuples"):
        if getattr(p, key) < n_combos:
            raise ParamsError(
                f"{source}: '{key}' is {getattr(p, key)}; it must be at least the number "
                f"of {what} ({n_combos}) so every one gets a tuple"
            )
    sizes = p.stand_in_sources
    if sizes is not None and (
        not sizes or any(not isinstance(k, int) or not 2 <= k <= 5 for k in sizes) or p.sources not in sizes
    ):
        raise ParamsError(
            f"{source}: 'stand_in_sources' is {sizes}; it must list scene sizes from 2 to 5, this run's "
            f"'sources' ({p.sources}) among them, or be null"
        )
    if p.sources == 2 and len(p.unseen()) < p.unseen_pairs:
        raise ParamsError(
            f"{source}: 'unseen_pairs' is {p.unseen_pairs}, but the run's classes have only {len(p.unseen())} "
            "(foreground, background) pairings that are not combinations (with distinct prompts); ask for fewer"
        )
    return p


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key written twice (plain YAML keeps the last silently)."""


def _no_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ParamsError(f"line {key_node.start_mark.line + 1}: key '{key}' is given twice")
        seen.add(key)
    return loader.construct_mapping(node, deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, YAML-parsed value), as on the command line (-p key=value)."""
    if "=" not in text:
        raise ParamsError(f"override -p {text!r} must look like key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), yaml.load(value, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise ParamsError(f"override -p {text!r}: the value is not valid YAML ({str(e).splitlines()[0]})") from None


def _unique_overrides(texts: list[str]) -> dict:
    """-p overrides as a dict; a key given twice is refused (the last would win in silence)."""
    out: dict = {}
    for text in texts:
        key, value = parse_override(text)
        if key in out:
            raise ParamsError(
                f"override -p {key} is given twice ({out[key]!r} and {value!r}); give it once "
                f"(for one run per value: --sweep {key}=V1,V2)"
            )
        out[key] = value
    return out


def _read(path: Path) -> dict:
    """A params file's settings: UTF-8 YAML, a mapping, no key twice, not empty."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start}); save the params file as UTF-8") from None
    except OSError as e:
        raise ParamsError(f"{path}: cannot read the params file ({e.strerror})") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except ParamsError as e:
        raise ParamsError(f"{path}: {e}") from None
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: not valid YAML: {' '.join(str(e).split())}") from None
    if raw is None:
        raise ParamsError(
            f"{path}: the params file is empty (or only comments); give at least one "
            "key, e.g. `name: myrun` (every key and its default: python -m avgas params)"
        )
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: must hold key: value pairs, got {type(raw).__name__}")
    return raw


def load(path: str | Path | None = None, overrides: dict | list[str] | None = None) -> Params:
    """Load and validate a params file, then apply overrides (a dict, or 'key=value' strings)."""
    raw: dict = {}
    source = "defaults"
    if path is not None:
        path = paths.resolve(path)
        if not path.is_file():
            raise ParamsError(f"params file not found: {path}")
        raw = _read(path)
        source = str(path)
    validate(raw, source)  # the file alone must be valid, so its errors name the file
    if overrides:
        if isinstance(overrides, list):
            overrides = _unique_overrides(overrides)
        for key in overrides:
            if key not in FIELDS:
                raise _unknown_key(key, "override -p")
        raw = {**raw, **overrides}
        source = f"{source} with overrides ({', '.join(overrides)})"
    return validate(raw, source)


def from_notebook(namespace: dict) -> Params:
    """Params inside a notebook: the file named by ``params_file``, overridden by every params
    key that papermill injected (or the parameters cell set to something other than None)."""
    overrides = {k: namespace[k] for k in FIELDS if namespace.get(k) is not None}
    p = load(namespace.get("params_file"), overrides)
    protect_inputs(p)
    if p.threads:  # set deliberately: 2 busy threads can be far slower than 1 on tiny ops
        import torch

        torch.set_num_threads(p.threads)
    return p


def save(p: Params, path: Path) -> None:
    paths.atomic_write_text(
        path,
        "# resolved params of this run (what actually ran)\n"
        + yaml.safe_dump(p.to_dict(), sort_keys=False, allow_unicode=True),
    )


def sweep_grid(p: Params, specs: list[str]) -> list[Params]:
    """Several --sweep options: one run per combination of their values (a grid), named
    <name>-<key1><value1>-<key2><value2>; a key swept twice is refused."""
    grid = [p]
    seen = set()
    for spec in specs:
        key = spec.partition("=")[0].strip()
        if key in seen:
            raise ParamsError(f"--sweep {key} is given twice; give all its values once: --sweep {key}=V1,V2,...")
        seen.add(key)
        grid = [q for base in grid for q in sweep(base, spec)]
    return grid


def sweep(p: Params, spec: str) -> list[Params]:
    """'key=v1,v2,...' -> one validated Params per value, each named <name>-<key><value> so
    that every run has its own folder (seeds, or any other key, as one list instead of copied
    files; the ablations are already one list: `alignments`)."""
    key, _, values = spec.partition("=")
    key = key.strip()
    if key not in FIELDS:
        raise _unknown_key(key, "--sweep")
    if not values:
        raise ParamsError(f"--sweep {spec!r} must look like key=v1,v2,...")
    out = []
    for text in values.split(","):
        _, value = parse_override(f"{key}={text}")
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(text).strip())
        out.append(validate({**p.to_dict(), key: value, "name": f"{p.name}-{key}{safe}"}, f"--sweep {key}={text}"))
    return out
