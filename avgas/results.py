"""Tables 1-3: the run's numbers gathered from notebooks 05-07, beside the paper's.

``results.json`` mirrors the ``results`` section of paper-avgas.yaml:
task (mixed / separated_foreground / separated_background) -> method (Sound2Scene, A2A, A2V,
A2A+A2V, the two references) -> metric (FID, IS, CRS, R@2*, R@1) -> [mean, std] over the combinations, plus a
``ci95`` tree of the same shape ([low, high], bootstrap over combinations), ``paired_ci`` (each
of the paper's claims as a paired bootstrap interval over test tuples), the judges' held-out
checks both ways (recall and false success) under ``judges``, and the run's ``protocol`` (which
pairs are evaluated, which the generator saw, the pool sizes), and ``validation``: the CRS on
validation tuples that settings are compared on (avgas.validation).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from avgas import judges as J
from avgas import metrics, paper, paths, scoring, slots, validation
from avgas.judges import checks as C
from avgas.params import Params, design
from avgas.runfolder import RunFolder

SOURCES = scoring.FILES  # the metric files notebooks 05-07 write (avgas.scoring), and their judges
PIT_METHODS = ("A2A-PIT", "A2V-PIT", "A2A+A2V-PIT")  # the same, slots assigned per tuple (no fg/bg order)
METHODS = (
    "Sound2Scene",
    "A2A",
    "A2V",
    "A2A+A2V",
    *PIT_METHODS,
    "control: f_A fine-tuned on mixtures",
    "control (A2V): f_A fine-tuned on mixtures towards the f_V blend",
    "reference: true image features",
    "reference: true audio features",
)
COLUMNS = {
    "mixed": ("IS", "CRS", "R@2*"),
    "separated_foreground": ("FID", "IS", "CRS", "R@1"),
    "separated_background": ("FID", "IS", "CRS", "R@1"),
}
POOLED = ("FID", "IS")  # in the tables: computed on all test images of a method (per seed), not per combination
TABLE_NAMES = {
    "mixed": "Table 1 (mixed images)",
    "separated_foreground": "Table 2 (separated: foreground)",
    "separated_background": "Table 3 (separated: background)",
}


def sources_of(collected: dict) -> int:
    """K of a collected run (its protocol says; runs from before K sources have 2)."""
    return int(collected.get("protocol", {}).get("sources", 2))


def columns(task: str, k: int = 2) -> tuple[str, ...]:
    """The metric columns of a task's table: the paper's for K = 2; CRS_K and R@K* for a mixed
    image of K sources."""
    if task == "mixed":
        return ("IS", slots.crs_name(k), slots.recall_name(k, "mixed"))
    return ("FID", "IS", "CRS", "R@1")


def table_names(k: int = 2) -> dict:
    """Task -> table title: Tables 1-3 of the paper; for K sources, one separated table per slot."""
    if k == 2:
        return dict(TABLE_NAMES)
    out = {"mixed": f"Table 1 (mixed images, {k} sources)"}
    for n, (task, slot) in enumerate(zip(slots.separated_tasks(k), slots.slot_names(k)), start=2):
        out[task] = f"Table {n} (separated: {slot.replace('_', ' ')})"
    return out


def judge_of(metric: str) -> str:
    """The judge a per-image metric comes from: the detector for CRS / CRS_K, CLIP for R@K."""
    return "detector (CRS)" if metric.startswith("CRS") else "CLIP (R@K)"


def split_method(name: str) -> tuple[str, int]:
    """'A2A#2' -> ('A2A', 2); 'A2A' -> ('A2A', 0): the model and its seed index (separators.method_name)."""
    base, _, k = name.partition("#")
    return base, int(k or 0)


def collect(p: Params) -> dict:
    """Merge the metric files of a run into the results.json tree; missing files are skipped.

    A method trained with several seeds ('A2A', 'A2A#1', ...) becomes one row: its value is the
    mean over seeds of the mean over combinations, ± the std over seeds (0 for a method that has
    no seed: Sound2Scene, the references); per-combination values and the bootstrap interval are
    of the seed-averaged values; per-tuple values keep every seed, for the paired claims."""
    results, ci95, judges, per_combination, per_tuple, pooled = {}, {}, {}, {}, {}, {}
    checks, extra = {}, {}  # the judges' claim checks (scoring.judge_checks); clusters, chance floor, features
    runs: dict = {}  # (task, method, metric) -> {seed index: per-combination dict}
    for what, judge in SOURCES.items():
        f = p.folder.metrics(what)
        if not f.is_file():
            continue
        d = json.loads(f.read_text())
        judges[judge] = d["judge"]
        if "checks" in d:
            checks[judge] = d["checks"]
        for key in ("clusters", "chance floor", "feature check", "pooled by kind"):
            if key in d:
                extra[key] = d[key]
        for task, methods in _nested(d.get("pooled", {})).items():
            pooled.setdefault(task, {}).update(methods)
        for key, metrics_ in d["scores"].items():
            task, name = key.split("/", 1)
            method, k = split_method(name)
            for metric, v in metrics_.items():
                runs.setdefault((task, method, metric), {})[k] = v["per_combination"]
                if "per_tuple" in v:
                    per_tuple.setdefault(task, {}).setdefault(method, {}).setdefault(metric, {})[k] = v["per_tuple"]

    for (task, method, metric), seeds in runs.items():
        combos = list(next(iter(seeds.values())))
        per_seed = [metrics.summary(s)[0] for s in seeds.values()]
        avg = {c: float(np.nanmean([s[c] for s in seeds.values()])) for c in combos}
        results.setdefault(task, {}).setdefault(method, {})[metric] = [
            float(np.mean(per_seed)),
            float(np.std(per_seed)),
        ]
        ci95.setdefault(task, {}).setdefault(method, {})[metric] = metrics.bootstrap_ci(avg, seed=p.seed)
        per_combination.setdefault(task, {}).setdefault(method, {})[metric] = avg
    kinds = by_kind(runs, p.seed, extra.pop("pooled by kind", {}))
    seeds_of = {m: len(ks) for (t, m, x), ks in runs.items()}
    per_tuple = {
        t: {m: {x: [v[k] for k in sorted(v)] for x, v in ms.items()} for m, ms in mt.items()}
        for t, mt in per_tuple.items()
    }
    loud = p.folder.metrics("loudness")
    protocol = p.folder.protocol
    loud = json.loads(loud.read_text()) if loud.is_file() else {}
    out = {
        "loudness": {"levels": loud.get("levels", []), "paired_ci": loud.get("paired", {})},
        "results": results,
        "ci95": ci95,
        "judges": judges,
        "per_combination": per_combination,
        "by kind": kinds,
        "per_tuple": per_tuple,
        "pooled": pooled,
        "protocol": {
            **(json.loads(protocol.read_text()) if protocol.is_file() else {}),
            "separator seeds": max([n for m, n in seeds_of.items() if m in SEEDED] or [1]),
        },
    }
    out.update(checks=checks, **extra)
    out["loudness"]["claims"] = loudness_claim_records(loud.get("per_tuple", []), checks, extra.get("clusters"))
    out["paired_ci"] = paired(out)
    out["claims"] = claim_records(out)
    out["draws"] = draws_beside(p.run_dir)
    out["ablation"] = ablation(p)
    val = p.folder.validation  # what settings are chosen on (notebook 06, avgas.validation)
    out["validation"] = json.loads(val.read_text()) if val.is_file() else {}
    beyond = p.folder.beyond  # notebook 10 (save_beyond): unseen pairings, PIT's slot order
    out["beyond"] = json.loads(beyond.read_text()) if beyond.is_file() else {}
    return out


def _nested(flat: dict) -> dict:
    """{'task/method': v} -> {task: {method: v}}."""
    out: dict = {}
    for key, v in flat.items():
        task, method = key.split("/", 1)
        out.setdefault(task, {})[method] = v
    return out


def by_kind(runs: dict, seed: int, pooled: dict) -> dict:
    """Tables 1-3 per kind of combination (Table 4: realistic, unrealistic): kind -> {'results',
    'ci95', 'pooled', 'combinations'}, each as in the whole table but over the kind's combinations
    only (mean over them per seed, ± std over seeds; bootstrap over them). `runs`: (task, method,
    metric) -> {seed: per-combination values}; `pooled`: kind -> FID/IS/KID on the kind's test
    images (scoring.fid_is)."""
    out: dict = {}
    for (task, method, metric), seeds in runs.items():
        combos = list(next(iter(seeds.values())))
        for kind in paper.KINDS:
            mine = [c for c in combos if paper.kind_of(c) == kind]
            if not mine:
                continue
            rec = out.setdefault(kind, {"results": {}, "ci95": {}, "pooled": _nested(pooled.get(kind, {}))})
            rec["combinations"] = len(mine)
            per_seed = [metrics.summary({c: s[c] for c in mine})[0] for s in seeds.values()]
            avg = {c: float(np.nanmean([s[c] for s in seeds.values()])) for c in mine}
            rec["results"].setdefault(task, {}).setdefault(method, {})[metric] = [
                float(np.mean(per_seed)),
                float(np.std(per_seed)),
            ]
            rec["ci95"].setdefault(task, {}).setdefault(method, {})[metric] = metrics.bootstrap_ci(avg, seed=seed)
    return out


def save_beyond(p: Params, slot_order: dict, unseen: dict | None) -> dict:
    """Notebook 10's record (PIT's slot order: more_sources.slot_orders; the unseen pairings' scores,
    clusters and claims: unseen_pairings), written to <run>/beyond.json; then results.json again,
    so that it carries them. Returns the run collected anew."""
    record: dict = {"slot order (share of validation tuples in the paper's order)": slot_order}
    if unseen is not None:
        record["unseen"] = unseen
    paths.atomic_write_text(p.folder.beyond, json.dumps(record, indent=1))
    collected = collect(p)
    write(p, collected)
    return collected


def ablation(p: Params) -> dict:
    """The g_blend_share ablation (G with the other candidate share: avgas.params.design), when its
    run exists beside this one (python -m avgas run <params> --sweep g_blend_share=V makes
    <name>-g_blend_shareV/): its folder and Table 1, to read beside this run's. A run that is
    itself an ablation has none."""
    if p.name.endswith(design.ablation_suffix(design.ablation_blend_share(p.g_blend_share))):
        return {}
    return ablation_beside(p.run_dir, p.g_blend_share)


def ablation_beside(run_dir, share: float) -> dict:
    """The ablation run's Table 1, paired claims and validation scores, read from the folder next to
    `run_dir` (so the book shows it even when the ablation finished after this run's notebook 08);
    `share` is the g_blend_share of the run at `run_dir`."""
    spellings = (design.ablation_suffix(share), f"-g_blend_share{float(design.ablation_blend_share(share))}")
    found = [RunFolder(Path(run_dir)).sibling(s).results for s in spellings]  # --sweep g_blend_share=0 or =0.0
    other = next((f for f in found if f.is_file()), None)
    if other is None:
        return {}
    d = json.loads(other.read_text())
    return {
        "run": str(other.parent),
        "g_blend_share": design.ablation_blend_share(share),
        "mixed": d.get("results", {}).get("mixed", {}),
        "paired_ci": d.get("paired_ci", {}),
        "validation": d.get("validation", {}),
    }


# The paper's claims, each a paired comparison on the same test tuples: (task, metric, method, baseline).
CONTROL = "control: f_A fine-tuned on mixtures"  # A2A's matched control (separators.CONTROL_NAME)
CONTROL_V = "control (A2V): f_A fine-tuned on mixtures towards the f_V blend"  # A2V's (separators.CONTROL_V_NAME)
SEEDED = ("A2A", "A2V", "A2A+A2V", *PIT_METHODS, CONTROL, CONTROL_V)


def comparisons(k: int = 2) -> list[tuple[str, str, str, str]]:
    """(task, metric, method, baseline) of every claim: the paper's (each separator and the controls
    against Sound2Scene on the mixed image, A2A and A2V each against its matched control, A2A against the baseline and
    the other alignments per separated slot), and each PIT separator against its fixed-order twin
    on the mixed image."""
    crs, rk = slots.crs_name(k), slots.recall_name(k, "mixed")
    fixed = ("A2A", "A2V", "A2A+A2V")
    out = [("mixed", crs, m, "Sound2Scene") for m in (*fixed, CONTROL, CONTROL_V, *PIT_METHODS)]
    out += [("mixed", rk, m, "Sound2Scene") for m in (*fixed, CONTROL, CONTROL_V, *PIT_METHODS)]
    out += [("mixed", metric, "A2A", CONTROL) for metric in (crs, rk)]
    out += [("mixed", metric, "A2V", CONTROL_V) for metric in (crs, rk)]  # A2V against its matched control
    out += [(task, "R@1", "A2A", m) for task in slots.separated_tasks(k) for m in ("Sound2Scene", "A2V", "A2A+A2V")]
    # PIT against its fixed-order twin on the mixed image only: a PIT separator's separated images
    # are put in source order by the oracle assignment (its true sources' embeddings, core.separator.matched),
    # a help its twin does not get, so a separated comparison would favour PIT by construction
    for pit in PIT_METHODS:
        out += [("mixed", metric, pit, pit.removesuffix("-PIT")) for metric in (crs, rk)]
    return out


COMPARISONS = tuple(comparisons(2))


def paired(collected: dict) -> dict:
    """'<method> - <baseline>' -> task -> metric -> paired bootstrap interval over test tuples."""
    pt, out = collected["per_tuple"], {}
    for task, metric, m, base in comparisons(sources_of(collected)):
        a, b = pt.get(task, {}).get(m, {}).get(metric), pt.get(task, {}).get(base, {}).get(metric)
        if a is not None and b is not None:
            out.setdefault(f"{m} - {base}", {}).setdefault(task, {})[metric] = metrics.paired_ci(a, b)
    return out


def write(p: Params, collected: dict) -> None:
    paths.atomic_write_text(
        p.folder.results,
        json.dumps(
            {
                k: collected[k]
                for k in (
                    "protocol",
                    "results",
                    "ci95",
                    "by kind",
                    "paired_ci",
                    "pooled",
                    "judges",
                    "loudness",
                    "ablation",
                    "validation",
                    "beyond",
                    "claims",
                    "checks",
                    "chance floor",
                    "feature check",
                    "draws",
                )
                if k in collected
            },
            indent=1,
        ),
    )


def table(collected: dict, task: str, kind: str = "all") -> pd.DataFrame:
    """One of Tables 1-3: a row per method, a column per metric holding "this run [95% CI] · the
    paper" (so the table fits a page). FID and IS are the pooled values (all test images of a
    method; mean ± std over seeds); CRS and R@K are means over the combinations, ± std over seeds,
    with a bootstrap interval over the combinations. `kind`: 'all' (the paper's table), or
    'realistic' / 'unrealistic' (Table 4's combinations of that kind only; the paper prints no
    per-kind numbers, so that table has no paper column)."""
    src = collected if kind == "all" else collected.get("by kind", {}).get(kind, {})
    ours, ci = src.get("results", {}).get(task, {}), src.get("ci95", {}).get(task, {})
    # the paper has two sources and prints its tables over all 20 combinations only
    theirs = paper.results().get(task, {}) if sources_of(collected) == 2 and kind == "all" else {}
    pooled = src.get("pooled", {}).get(task, {})
    rows = {}
    for m in METHODS:
        if m not in ours and m not in theirs:
            continue
        row = {}
        for metric in columns(task, sources_of(collected)):
            if metric in POOLED and pooled:
                v, c = pooled.get(m, {}).get(metric), None
            else:
                v, c = ours.get(m, {}).get(metric), ci.get(m, {}).get(metric)
            here = f"{v[0]:.2f} ± {v[1]:.2f}" if v and np.isfinite(v[0]) else "–"
            if c and np.isfinite(c[0]):
                here += f" [{c[0]:.2f}, {c[1]:.2f}]"
            t = theirs.get(m, {}).get(metric)
            head = f"{metric}{scoring.floor_note(collected, metric)}"
            row[f"{head}: here · paper" if theirs else head] = f"{here} · {t[0]:.2f}" if t else here
        rows[m] = row
    return pd.DataFrame(rows).T


def kinds(collected: dict) -> dict:
    """The kinds of combination this run has, each with its number of combinations:
    {'all': 20, 'realistic': 15, 'unrealistic': 5} for the paper's Table 4; 'all' alone when the
    run has one kind only (a custom `combinations`)."""
    by = collected.get("by kind", {})
    out = {k: by[k]["combinations"] for k in paper.KINDS if k in by}
    if not out:
        return {}
    return {"all": sum(out.values()), **out} if len(out) > 1 else {"all": sum(out.values())}


def kind_title(collected: dict, task: str, kind: str) -> str:
    """'Table 1 (mixed images), unrealistic combinations (5)': a per-kind table's title."""
    name = table_names(sources_of(collected)).get(task, task)
    return name if kind == "all" else f"{name}, {kind} combinations ({kinds(collected).get(kind, 0)})"


def pooled_table(collected: dict) -> pd.DataFrame:
    """FID, IS and KID on all test images of each method (per seed, mean ± std over seeds)."""
    rows = []
    fmt = lambda v, d: f"{v[0]:.{d}f} ± {v[1]:.{d}f}"  # noqa: E731
    for task, methods in collected.get("pooled", {}).items():
        for m in [m for m in METHODS if m in methods]:
            v = methods[m]
            rows.append(
                {
                    "task": task,
                    "method": m,
                    "images × seeds": f"{v['images']} × {v['seeds']}",
                    "FID": fmt(v["FID"], 1) if "FID" in v else "–",
                    "IS": fmt(v["IS"], 2),
                    "KID": fmt(v["KID"], 3) if "KID" in v else "–",
                }
            )
    return pd.DataFrame(rows, columns=["task", "method", "images × seeds", "FID", "IS", "KID"]).set_index(
        ["task", "method"]
    )


def judge_table(collected: dict) -> pd.DataFrame:
    """Each judge on held-out true images of its own pool, both ways: recall, and the rate of
    successes it gives an image showing only one class of a pair (point rates, as measured when it
    was trained; not measured: NaN, shown as such). What a claim rests on is its check, with
    bounds: check_table."""
    rows = []
    for judge, v in collected["judges"].items():
        for k, x in v.items():
            if k.startswith(("recall", "false")):
                rows.append({"judge": judge, "check": k, "score": round(x, 3) if np.isfinite(x) else "not measured"})
    return pd.DataFrame(rows, columns=["judge", "check", "score"]).set_index(["judge", "check"])


BOOTSTRAP_REPLICATES = 4000


def claim_text(collected: dict, task: str, metric: str, method: str, base: str) -> str:
    """How a claim is written: '<method> beats <baseline> on <task> <metric> (Table N)'."""
    title = table_names(sources_of(collected)).get(task, task).split(" (")[0]
    return f"{method} beats {base} on {task.replace('_', '-')} {metric} ({title})"


def claim_records(collected: dict, n: int = BOOTSTRAP_REPLICATES, alpha: float = 0.05) -> list[dict]:
    """Every claim of Tables 1-3 under the rule of book/reproduction.md ("When a claim is told"):

    1. its judge and the check of its claim type (judges.checks.claim_check): each rate with its
       exact 95% bound; a failed check makes the claim "cannot tell", naming what failed;
    2. its difference (method - baseline) with a hierarchical bootstrap: separator seeds, then test
       clips as clusters (metrics.hierarchical_bootstrap);
    3. a test against "the difference lies within ± the judge's margin", Holm-corrected over the
       claims of its table whose check passed; the corrected interval is the percentile interval
       at the level of the claim's Holm step;
    4. the verdict: "holds" when the corrected interval lies above +margin and Holm rejects, "does
       not hold" when it lies below -margin and Holm rejects, "cannot tell" otherwise.

    Without clip clusters recorded (a run scored before they were), no interval is computed."""
    pt, clusters = collected.get("per_tuple", {}), collected.get("clusters")
    rows, reps = [], []
    for task, metric, m, base in comparisons(sources_of(collected)):
        a, b = pt.get(task, {}).get(m, {}).get(metric), pt.get(task, {}).get(base, {}).get(metric)
        if a is None or b is None:
            continue
        row, r = claim_row(collected.get("checks", {}), task, metric, a, b, clusters, n, alpha)
        row = {
            "claim": claim_text(collected, task, metric, m, base),
            "table": table_names(sources_of(collected))[task].split(" (")[0],
            "method": m,
            "baseline": base,
            **row,
        }
        rows.append(row)
        reps.append(r)
    tell(rows, reps, "task", alpha)
    return rows


def claim_row(checks: dict, task: str, metric: str, a, b, clusters, n: int, alpha: float = 0.05):
    """One claim (method a - baseline b on the same tuples) before its family is corrected: its
    judge's check for (metric, task) from `checks` (judge -> record), and, with the tuples' clip
    `clusters`, the hierarchical bootstrap of the difference (metrics.hierarchical_bootstrap) and
    the p-value against the judge's margin. Returns (record, replicates or None)."""
    check = C.claim_check(checks.get(judge_of(metric)), metric, task)
    row = {
        "task": task,
        "metric": metric,
        "judge": check["judge"],
        "check": check["rows"],
        "check passed": check["passed"],
        "failed checks": check["failed"],
        "margin": check["margin"],
    }
    floor = [r["chance floor"] for r in check["rows"] if "chance floor" in r]
    if floor:
        row["chance floor"] = floor[0]
    if clusters is None or len(clusters) != np.atleast_2d(np.asarray(a, float)).shape[1]:
        row["verdict"] = "cannot tell: no clip clusters recorded (score the run again: notebooks 06-07)"
        return row, None
    boot = metrics.hierarchical_bootstrap(a, b, clusters, n=n)
    row.update(
        difference=boot["difference"],
        ci95=metrics.interval(boot["replicates"], alpha),
        p=metrics.p_beyond(boot["replicates"], row["margin"]),
        units=boot["units"],
        clips=boot["clips"],
        seeds=boot["seeds"],
    )
    return row, boot["replicates"]


def tell(rows: list[dict], reps: list, family: str, alpha: float = 0.05) -> None:
    """Steps 3-4 of claim_records, in place: Holm over each family (the rows sharing `family`'s
    value) of the claims whose check passed, each claim's corrected interval at its Holm step's
    level, and its verdict against ± its judge's margin; a claim whose check failed reads
    "cannot tell", names what failed, and shows its interval at the Bonferroni level of its table."""
    for value in dict.fromkeys(r[family] for r in rows):
        members = [i for i, r in enumerate(rows) if r[family] == value and "p" in r and r["check passed"]]
        for i, h in zip(members, metrics.holm([rows[i]["p"] for i in members], alpha)):
            r = rows[i]
            r["holm"] = h
            r["corrected ci"] = metrics.interval(reps[i], h["level"])
            low, high = r["corrected ci"]
            if h["rejected"] and low > r["margin"]:
                r["verdict"] = "holds"
            elif h["rejected"] and high < -r["margin"]:
                r["verdict"] = "does not hold"
            else:
                r["verdict"] = f"cannot tell: the corrected interval does not clear ±{r['margin']:.3f}"
        # a claim whose check failed is not tested, but still shows its interval, corrected as the
        # strictest Holm step would be (Bonferroni over every claim of its table): what a reader
        # would see if the judge were trusted
        everyone = [i for i, r in enumerate(rows) if r[family] == value and "p" in r]
        for i in everyone:
            if "corrected ci" not in rows[i]:
                rows[i]["corrected ci"] = metrics.interval(reps[i], alpha / len(everyone))
                rows[i]["corrected by"] = f"Bonferroni over {len(everyone)} (check failed: not tested)"
    for r in rows:
        if "verdict" not in r:
            r["verdict"] = "cannot tell: check failed: " + "; ".join(r["failed checks"])


def short(verdict: str) -> str:
    """holds / does not hold / cannot tell, without the reason."""
    return verdict.split(":")[0].split(" (")[0]


def claims(collected: dict) -> pd.DataFrame:
    """The claims table: per claim of Tables 1-3, its judge and check (the failed rates named, or
    the margin its errors allow), the difference with its corrected interval and Holm's adjusted
    p, R@2*'s chance floor, and the verdict; one column more per instrument draw found beside the
    run. Then the quiet-source claims of the loudness sweep (Supp. C), under the same rule."""
    records = collected.get("claims")
    if records is None:
        records = claim_records(collected)
    loud = collected.get("loudness", {}).get("claims", [])
    return claims_frame(records, collected.get("draws", {}), loud)


def claims_frame(records: list[dict], draws: dict | None = None, more: list[dict] = ()) -> pd.DataFrame:
    """Claim records (claim_records, loudness_claim_records, or notebook 10's) as a table, one row
    per claim: judge and check, difference [corrected CI], Holm's adjusted p, chance floor, units,
    verdict; `draws`: other instrument draws' verdicts (draws_beside), a column each; `more`:
    records appended without draw columns (the loudness claims)."""
    rows = []
    for i, r in enumerate([*records, *more]):
        row = {
            "claim": r["claim"],
            "judge · check": r["judge"]
            + (" · passed, margin ±{:.3f}".format(r["margin"]) if r["check passed"] else " · failed"),
            "difference [corrected CI]": (
                f"{r['difference']:+.3f} [{r['corrected ci'][0]:+.3f}, {r['corrected ci'][1]:+.3f}]"
                if "corrected ci" in r
                else f"{r['difference']:+.3f} [{r['ci95'][0]:+.3f}, {r['ci95'][1]:+.3f}] (95%, not tested)"
                if "ci95" in r
                else "–"
            ),
            "Holm p (of m)": f"{r['holm']['adjusted p']:.3g} (of {r['holm']['of']})" if "holm" in r else "–",
            "chance floor": f"{r['chance floor']:.3f}" if "chance floor" in r else "",
            "tuples · clips · seeds": f"{r['units']} · {r['clips']} · {r['seeds'][0]}/{r['seeds'][1]}"
            if "units" in r
            else "–",
            "verdict": r["verdict"],
        }
        if i < len(records):
            for label, verdicts in (draws or {}).items():
                row[f"verdict, {label}"] = verdicts.get(r["claim"], "–")
        rows.append(row)
    columns = list(rows[0]) if rows else ["claim", "verdict"]
    return pd.DataFrame(rows, columns=columns).set_index("claim")


QUIET = "the quiet-source failure (Supp. C): A2A's mixed CRS is lower with the foreground at {} than at 0 dB"


def loudness_claim_records(
    per_tuple: list[dict], checks: dict, clusters, n: int = BOOTSTRAP_REPLICATES, alpha: float = 0.05
) -> list[dict]:
    """The quiet-source failure (Supp. C) under the rule of claim_records: A2A's mixed CRS at 0 dB
    minus at each level where the foreground is quieter, on the loudness sweep's test tuples (the
    test tuples of Tables 1-3, so their clip `clusters`), seeds then clips resampled, Holm over the
    levels, told against the detector's mixed-CRS margin. `per_tuple`: the sweep's records
    (metrics_loudness.json: level, method, seed, per_tuple_CRS)."""
    t = pd.DataFrame(per_tuple)
    if t.empty or "per_tuple_CRS" not in t:
        return []
    if "level" not in t:  # a sweep from before the natural point: the swept levels only
        t["level"] = [f"{v:+.0f} dB" for v in t["level_db"]]
    a2a = t[t["method"] == "A2A"].sort_values("seed")

    def seeds(level):
        return [[float(x) for x in v] for v in a2a.loc[a2a["level"] == level, "per_tuple_CRS"]]

    zero = seeds(f"{0.0:+.0f} dB")
    rows, reps = [], []
    for level in [lv for lv in dict.fromkeys(a2a["level"]) if str(lv).startswith("-")] if zero else []:
        row, r = claim_row(checks, "mixed", "CRS", zero, seeds(level), clusters, n, alpha)
        rows.append({"claim": QUIET.format(level), "level": level, **row})
        reps.append(r)
    tell(rows, reps, "task", alpha)
    return rows


def check_table(collected: dict, judge: str | None = None) -> pd.DataFrame:
    """Each claim type's check: per judge, claim type and source of images (the judge pool's
    held-out true images; G's images of their f_V features), each rate as k/n with its exact 95%
    bound, the threshold, and whether it passes. `judge`: one judge's claim types only."""
    k = sources_of(collected)
    types = [(slots.crs_name(k), "mixed"), ("CRS", "separated_foreground"), ("CRS", "separated_background")]
    types += [
        (slots.recall_name(k, "mixed"), "mixed"),
        ("R@1", "separated_foreground"),
        ("R@1", "separated_background"),
    ]
    types = [(m, t) for m, t in types if judge in (None, judge_of(m))]
    rows = []
    for metric, task in types:
        c = C.claim_check(collected.get("checks", {}).get(judge_of(metric)), metric, task)
        for r in c["rows"]:
            rows.append(
                {
                    "claim type": f"{metric}, {task.replace('_', '-')}",
                    "judge": c["judge"],
                    "images": r["source"],
                    "check": r["check"],
                    "k/n": r["k/n"],
                    "rate": round(r["rate"], 3) if np.isfinite(r["rate"]) else "not measured",
                    "95% bound": f"{r['bound']} {r['value']:.3f}" if np.isfinite(r["value"]) else "–",
                    "threshold": r["threshold"],
                    "passes": "–" if r.get("ruled") is False else "yes" if r["passed"] else "NO",
                }
            )
    cols = ["claim type", "judge", "images", "check", "k/n", "rate", "95% bound", "threshold", "passes"]
    return pd.DataFrame(rows, columns=cols).set_index(["claim type", "images", "check"])


def check_phrase(record: dict, metric: str, task: str) -> str:
    """A check's outcome in words, for a notebook's summary: 'passes its check (margin ±0.045)' or
    'fails its check (<what failed>)'."""
    c = C.claim_check(record, metric, task)
    if c["passed"]:
        return f"passes its check for {metric} claims on {task.replace('_', '-')} images (margin ±{c['margin']:.3f})"
    return f"fails its check for {metric} claims on {task.replace('_', '-')} images ({'; '.join(c['failed'])})"


def draws_beside(run_dir) -> dict:
    """Verdicts of the same claims under other instrument draws: the sibling folders
    `<name>-instrument_seed<N>/` made by `--sweep instrument_seed=N` (and the base run, seen from
    a sibling): 'instrument_seed N' -> claim -> verdict. Empty when there are none."""
    run_dir = Path(run_dir)
    base = run_dir.name.split("-instrument_seed")[0]
    found = {}
    for d in sorted([run_dir.parent / base, *run_dir.parent.glob(f"{base}-instrument_seed*")]):
        if d.resolve() == run_dir.resolve() or not RunFolder(d).results.is_file():
            continue
        label = f"instrument_seed {d.name.split('-instrument_seed')[1]}" if d.name != base else f"{base} (base draw)"
        records = json.loads(RunFolder(d).results.read_text()).get("claims") or []
        found[label] = {r["claim"]: short(r["verdict"]) for r in records}
    return found


def old_verdicts(collected: dict) -> dict:
    """The claims of Tables 1-3 under the protocol of issue 11: a tuple bootstrap of the seed-averaged
    differences, uncorrected, told when the judge is 'trusted' (recall >= 0.9, false success <= 0.05
    on true images, point rates): claim -> verdict."""
    out = {}
    for name, tasks in collected.get("paired_ci", {}).items():
        m, base = name.split(" - ")
        for task, metrics_ in tasks.items():
            for metric, ci in metrics_.items():
                trusted = J.trusted(collected.get("judges", {}).get(judge_of(metric), {}))
                out[claim_text(collected, task, metric, m, base)] = (
                    metrics.verdict(ci) if trusted else "cannot tell (judge not trusted)"
                )
    return out


def protocol_counts(collected: dict) -> pd.DataFrame:
    """How many claims of Tables 1-3 read holds / does not hold / cannot tell, the old protocol
    (issue 11) beside the new one, on the same scores."""
    new = {r["claim"]: short(r["verdict"]) for r in (collected.get("claims") or claim_records(collected))}
    old = {k: short(v) for k, v in old_verdicts(collected).items()}
    kinds = ["holds", "does not hold", "cannot tell"]
    return pd.DataFrame(
        {
            "old protocol": [sum(v == k for v in old.values()) for k in kinds],
            "new protocol": [sum(v == k for v in new.values()) for k in kinds],
        },
        index=kinds,
    )


def _cell(v) -> str:
    return f"{v[0]:.2f} ± {v[1]:.2f}" if v else ""


def ablation_table(collected: dict) -> pd.DataFrame:
    """Table 1's CRS and R@2* of this run beside the g_blend_share ablation run, with the mixed CRS
    on validation tuples of both."""
    ab = collected.get("ablation") or {}
    if not ab:
        return pd.DataFrame()
    tag = f"g_blend_share {ab.get('g_blend_share', 0):g}"
    this, other = collected.get("results", {}).get("mixed", {}), ab.get("mixed", {})
    val_this = validation.mean_over_seeds(collected.get("validation", {}).get("CRS", {}).get("mixed", {}))
    val_other = validation.mean_over_seeds(ab.get("validation", {}).get("CRS", {}).get("mixed", {}))
    rows, floor = {}, scoring.floor_note(collected, "R@2*")
    for m in [m for m in METHODS if m in this or m in other]:
        rows[m] = {
            "CRS (this run)": _cell(this.get(m, {}).get("CRS")),
            f"CRS ({tag})": _cell(other.get(m, {}).get("CRS")),
            f"R@2*{floor} (this run)": _cell(this.get(m, {}).get("R@2*")),
            f"R@2*{floor} ({tag})": _cell(other.get(m, {}).get("R@2*")),
            "validation CRS (this run)": f"{val_this[m]:.2f}" if m in val_this else "",
            f"validation CRS ({tag})": f"{val_other[m]:.2f}" if m in val_other else "",
        }
    return pd.DataFrame(rows).T


def validation_table(collected: dict) -> pd.DataFrame:
    """CRS on validation tuples per method (mean over seeds) and task: what settings are chosen on."""
    crs = collected.get("validation", {}).get("CRS", {})
    return pd.DataFrame({task: validation.mean_over_seeds(v) for task, v in crs.items()}).round(2)
