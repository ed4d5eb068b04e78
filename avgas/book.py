"""Build the Jupyter Book from a finished run folder, offline.

The pages in book/ are copied into a staging folder (`_build/src`) together with the run's
executed notebooks and a results page written from its results.json, then `jupyter-book build`
renders `_build/html`. Nothing generated is written into book/ or committed. MathJax is served from
a local copy (npm package mathjax@3, folder es5) so that equations render without a CDN.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import nbformat
import pandas as pd
import yaml

from avgas import custody, paths, results
from avgas.judges import clip
from avgas.runfolder import RunFolder

MATHJAX_VERSION = "3.2.2"


class BookError(RuntimeError):
    """The book cannot be built; the message says what is missing."""


def mathjax_dir() -> Path:
    """The local MathJax (es5 folder), fetched once with npm from the package registry."""
    target = paths.project_root() / ".cache" / f"mathjax-{MATHJAX_VERSION}"
    if (target / "tex-chtml.js").is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise BookError(
            "npm not found: it fetches MathJax for offline equations "
            "(apt-get install npm, or copy the npm package mathjax@3's es5/ folder to "
            f"{target})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [npm, "pack", f"mathjax@{MATHJAX_VERSION}", "--silent"], cwd=tmp, capture_output=True, text=True
        )
        tgz = next(Path(tmp).glob("mathjax-*.tgz"), None)
        if r.returncode != 0 or tgz is None:
            raise BookError(f"npm pack mathjax@{MATHJAX_VERSION} failed: {r.stderr.strip()[-300:]}")
        with tarfile.open(tgz) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("package/es5/")]
            tar.extractall(tmp, members=members, filter="data")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(str(Path(tmp) / "package" / "es5"), target)
    return target


def _md_table(df) -> str:
    """A table in Markdown; a table indexed by several levels gets one column per level."""
    if df.index.nlevels > 1:
        return df.reset_index().to_markdown(index=False)
    return df.to_markdown()


def _loudness_section(collected: dict, run_dir: Path) -> list[str]:
    """The relative-loudness sweep (the paper's failure case): its tables and figures, when the run has it."""
    if not collected.get("loudness", {}).get("levels"):
        return []
    parts = []
    long = pd.DataFrame(collected["loudness"]["levels"])
    if "level" not in long:  # a run from before the natural point: the swept levels only
        long["level"] = [f"{v:+.0f} dB" for v in long["level_db"]]
    order = list(dict.fromkeys(long["level"]))  # -20 ... +20 dB, then the natural mix

    def wide(rates):
        w = long.pivot(index="level", columns="method", values=rates).round(2).loc[order]
        w.columns = [f"{metric}: {method}" for metric, method in w.columns]
        return w

    parts.append(
        "## Relative loudness: the paper's failure case\n\nThe held-out mixtures again, with the "
        "foreground at each level relative to the background (the same clips and noise), and the "
        "natural-level mix of Table 1 as its own row.\n\n" + _md_table(wide(["CRS", "R@2*"])) + "\n"
    )
    presence = [c for c in ("foreground found", "background found") if c in long]
    if presence:
        parts.append(
            "Which source the detector finds in the mixed images, per level: the rate at which the "
            "foreground is found and the rate at which the background is found.\n\n" + _md_table(wide(presence)) + "\n"
        )
    if RunFolder(run_dir).figure("loudness_presence.png").is_file():
        parts.append(
            "```{figure} loudness_presence.png\n:name: loudness-presence-run\n\nWhich source vanishes "
            "as it gets quieter: the rate at which the foreground (solid) and the background (dashed) "
            "are found in the mixed images against the foreground's relative level; diamonds: the "
            "natural-level mix of Table 1.\n```\n"
        )
    if RunFolder(run_dir).figure("loudness.png").is_file():
        parts.append(
            "```{figure} loudness.png\n:name: loudness-run\n\nCRS and R@2* of the mixed images "
            "against the foreground's relative level.\n```\n"
        )
    return parts


def results_page(run_dir: Path) -> str:
    """The results page: Tables 1-3 beside the paper's, the judges' checks, the claims."""
    f = RunFolder(run_dir).results
    if not f.is_file():
        raise BookError(
            f"{f} is missing: the run has not finished notebook 08 (python -m avgas run {RunFolder(run_dir).params})"
        )
    collected = json.loads(f.read_text())
    p = yaml.safe_load(RunFolder(run_dir).params.read_text())
    if not collected.get("ablation"):  # the ablation may have finished after this run's notebook 08
        collected["ablation"] = results.ablation_beside(run_dir, p["g_blend_share"])
    collected["draws"] = results.draws_beside(run_dir)  # other instrument draws may have finished later
    parts = [
        f"# Results\n\nThe numbers of the run `{p['name']}` (world: {p['world']}, seed {p['seed']}), "
        "beside the paper's. Each cell is the mean over the combinations, ± its std over the separator "
        "seeds, [a bootstrap 95% interval over the combinations] · the paper's mean. The two *reference* rows condition the "
        "generator on features of the true single sources (f_V of the true images, f_A of the true "
        "clips): what the generator and the judges allow when separation is perfect. Under each "
        "table, the same rows for the realistic and the unrealistic combinations of Table 4 apart (the "
        "unrealistic ones: the five foregrounds over underwater bubbling, trained on like the rest, Sec. "
        "4.1; the paper prints no per-kind numbers; FID and IS there are pooled over the kind's test images). Notebook "
        "[08](generated/08_results) has the per-combination charts.\n"
    ]
    parts.append(substitutions_note(p))  # LAION weights, middle frames: said beside the tables
    parts.append(
        "## The checks the claims rest on\n\nEach claim type's check, every rate counted (k/n) with its "
        "exact 95% bound, on the judge pool's held-out true images and on the images G makes from their "
        "f_V features; how a check becomes a verdict is written in the "
        "{ref}`reproduction notes <when-a-claim-is-told>`.\n\n" + _md_table(results.check_table(collected)) + "\n"
    )
    if collected.get("feature check"):
        fc = pd.Series(collected["feature check"], name="FID's features").to_frame()
        parts.append("### FID's features, validated\n\n" + _md_table(fc) + "\n")
    split = [k for k in results.kinds(collected) if k != "all"]
    for task, name in results.table_names(results.sources_of(collected)).items():
        parts.append(f"## {name}\n\n" + _md_table(results.table(collected, task)) + "\n")
        for kind in split:  # Table 4's kinds (Sec. 4.1), each trained on like the rest
            parts.append(
                f"### {results.kind_title(collected, task, kind).split(', ', 1)[1].capitalize()}\n\n"
                + _md_table(results.table(collected, task, kind))
                + "\n"
            )
    if collected.get("pooled"):
        parts.append(
            "## FID, IS and KID, all test images of a method pooled\n\n"
            + _md_table(results.pooled_table(collected))
            + "\n"
        )
    parts.append(
        "## The paper's claims\n\nEach claim is (method - baseline) on the same test tuples and the "
        "same noise, its interval from a bootstrap over separator seeds and test clips, Holm-corrected "
        "over its table, against its judge's margin: the rule is in the "
        "{ref}`reproduction notes <when-a-claim-is-told>`.\n\n"
        + _md_table(results.claims(collected))
        + "\n\nThe same scores under the protocol of issue 11 (a tuple bootstrap, uncorrected, told when "
        "a judge was 'trusted' on point rates) and under this one:\n\n"
        + _md_table(results.protocol_counts(collected))
        + "\n"
    )
    if collected.get("validation", {}).get("CRS"):
        v = collected["validation"]
        parts.append(
            "## What settings are chosen on: CRS on the validation tuples\n\nThe same generation and "
            f"detector on the run's {v['tuples']} validation mixtures (a noise draw of their own). "
            "Settings of the stand-ins and the separators are compared on these, never on the tables "
            "above (`python -m avgas validate RUN_A RUN_B`).\n\n"
            + _md_table(results.validation_table(collected))
            + "\n"
        )
    if collected.get("ablation"):
        ab = collected["ablation"]
        share = ab.get("g_blend_share", 0)
        what = (
            "G never conditioned on a blend of features"
            if share == 0
            else f"G conditioned on a blend of features in a share {share:g} of its two-class scenes"
        )
        parts.append(
            f"## Ablation: G {'without' if share == 0 else 'with'} blended conditions (`g_blend_share: {share:g}`)"
            f"\n\nThe run `{Path(ab['run']).name}`: the same protocol with {what} "
            "(Table 1 on test tuples, mean ± std over seeds; and the validation CRS).\n\n"
            + _md_table(results.ablation_table(collected))
            + "\n"
        )
    parts += _loudness_section(collected, run_dir)
    if RunFolder(run_dir).figure("two_tasks.png").is_file():
        parts.append(
            "## One held-out mixture per row\n\n```{figure} two_tasks.png\n:name: two-tasks-run\n\n"
            "True images, the separated images (AV-GAS A2A), the mixed image and the "
            "Sound2Scene baseline's image for held-out mixtures.\n```\n"
        )
    return "\n".join(parts)


QUIET_TAGS = {"parameters", "injected-parameters"}  # papermill's cells: settings, not narrative


def publishable(notebook_json: str, local: list) -> str:
    """An executed notebook as the book shows it: the parameter cells removed (papermill's holds this
    machine's absolute path), stderr streams (warnings, library log lines) dropped — they stay in
    the run folder's copy and kernel.log — and any remaining mention of the local folders made
    relative."""
    nb = nbformat.reads(notebook_json, as_version=4)
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & QUIET_TAGS:
            cell.metadata["tags"] = sorted(tags | {"remove-cell"})
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.name == "stderr")]
    text = nbformat.writes(nb)
    for folder in sorted({str(Path(f).resolve()) for f in local}, key=len, reverse=True):
        text = text.replace(folder + "/", "").replace(folder, ".")
    return text


def build(run_dir: str | Path, out: str | Path | None = None, progress: bool = True) -> Path:
    """Stage book/ + the run's executed notebooks + a results page, then jupyter-book build into
    <out>/_build/html (out: the project root unless given). Returns the HTML folder."""
    root = paths.project_root()
    run_dir = paths.resolve(run_dir)
    out = paths.resolve(out) if out else root
    notebooks = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
    toc = yaml.safe_load((root / "book" / "_toc.yml").read_text())
    wanted = [
        c["file"]
        for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}])
        for c in part["chapters"]
        if c["file"].startswith("generated/")
    ]
    have = {f"generated/{nb.stem}" for nb in notebooks}
    missing = [w for w in wanted if w not in have]
    if missing:
        raise BookError(
            f"{run_dir} lacks executed notebooks {', '.join(m.split('/')[1] for m in missing)}; "
            f"run them first (python -m avgas run {RunFolder(run_dir).params})"
        )
    stage = out / "_build" / "src"
    # the staging folder is emptied first: never one that avgas did not stage (custody)
    custody.refuse_foreign(out / "_build", [stage], "book", made_by_avgas=lambda f: (f / "results.md").is_file())
    shutil.rmtree(stage, ignore_errors=True)
    shutil.copytree(root / "book", stage, ignore=shutil.ignore_patterns("generated", "_build"))
    (stage / "generated").mkdir()
    for nb in notebooks:
        (stage / "generated" / nb.name).write_text(publishable(nb.read_text(), [root, run_dir]))
    (stage / "results.md").write_text(results_page(run_dir))
    for fig in ("two_tasks.png", "loudness.png", "loudness_presence.png"):
        if RunFolder(run_dir).figure(fig).is_file():
            shutil.copy(RunFolder(run_dir).figure(fig), stage / fig)
    config = yaml.safe_load((root / "_config.yml").read_text())
    mj = mathjax_dir()
    shutil.copytree(mj, stage / "_mathjax" / "mathjax")
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_extra_path"] = ["_mathjax"]  # not _static: every .js there becomes a script tag
    sphinx["mathjax_path"] = "../mathjax/tex-chtml.js"  # relative to _static/: the copy at the html root
    sphinx["html_static_path"] = ["_static"]
    sphinx["html_css_files"] = ["avgas.css"]  # code wraps and wide tables scroll inside the column
    (stage / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    custody.forget(out / "_build", stage)
    custody.record(out / "_build", [f for f in stage.rglob("*") if f.is_file()], "book")
    jb = Path(sys.executable).with_name("jupyter-book")
    t0 = time.perf_counter()
    r = subprocess.run(
        # -W: a warning (a broken reference, a missing figure) fails the build, as QuantEcon's books do
        [
            str(jb if jb.exists() else "jupyter-book"),
            "build",
            "-W",
            "--keep-going",
            str(stage),
            "--path-output",
            str(out),
        ],
        capture_output=not progress,
        text=True,
    )
    if r.returncode != 0:
        raise BookError(
            "jupyter-book build failed (warnings count as errors)"
            + (f":\n{(r.stdout or '')[-3000:]}" if not progress else "")
        )
    html = out / "_build" / "html"
    print(f"[avgas] book built in {time.perf_counter() - t0:.0f} s: {html / 'index.html'}", file=sys.stderr)
    return html


# -------------------------------------------------------- the paper's parts, and their substitutes


def substitutions(p) -> list[str]:
    """Where the run's parts depart from the paper's setup (Sec. 4.1), in words, for the results
    page beside the tables. `p`: Params or the dict of a run's params.yaml; [] for the synthetic world
    (its stand-ins are named on every page) and for a real run with the paper's parts."""
    get = p.get if isinstance(p, dict) else lambda k, d=None: getattr(p, k, d)
    if get("world") != "vggsound":
        return []
    out = []
    if not get("frames_json"):
        out.append(
            "Frames: each clip's middle frame (`frames_json: null`), where the paper takes Sound2Scene's "
            "highly correlated frames (`top1_boxes_top10_moments.json`)."
        )
    ckpt, arch = str(get("clip_checkpoint") or ""), str(get("clip_model") or "")
    if arch != clip.OPENAI_ARCH or "openai" not in ckpt.lower():
        what = "LAION-2B weights" if "laion" in ckpt.lower() else f"`{Path(ckpt).name}`"
        out.append(
            f"R@K judge: OpenCLIP `{arch}` with {what}, where the paper uses OpenAI's CLIP ViT-B/32 (ref. [28]; "
            f"in OpenCLIP `{clip.OPENAI_ARCH}` with `{clip.OPENAI_FILE}` from {clip.OPENAI_SOURCE}). R@K is "
            "not comparable with the paper's."
        )
    return out


def substitutions_note(p) -> str:
    """The substitutions as a Markdown section ('' when there are none)."""
    subs = substitutions(p)
    if not subs:
        return ""
    return "## Parts that differ from the paper's\n\n" + "\n".join(f"- {s}" for s in subs) + "\n"
