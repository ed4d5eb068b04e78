"""The interactive explorer (notebook 09): pick two classes (or two clips), move λ, the relative
level and the noise seed, and see the separator, the generator and the judges react.

`Explorer.show(...)` draws one state (what the executed notebook and the book show);
`Explorer.widget()` wires it to ipywidgets for a live kernel.
"""

from __future__ import annotations

import base64
import html
import io
import os
from dataclasses import dataclass

import ipywidgets as w
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, display
from PIL import Image

from avgas import checkpoints, data, judges, paper, report, separators
from avgas import spectrogram as spec
from avgas.core import generation, separator
from avgas.params import Params


def live(requested: bool | None = None) -> bool:
    """Make live widgets? Not in a batch run (python -m avgas run sets AVGAS_BATCH): nbclient can
    block forever on a cell that opens widgets. `requested` (the notebook's `live` parameter)
    overrides, e.g. papermill -p live False."""
    return requested if requested is not None else not os.environ.get("AVGAS_BATCH")


class MissingRun(RuntimeError):
    """The run's checkpoints are not there yet; the message says how to make them."""


@dataclass
class State:
    fg: str
    bg: str
    waves: dict  # mix / foreground / background, 16 kHz
    spectrogram: torch.Tensor
    images: dict  # name -> (R, R, 3) uint8
    verdicts: dict  # name -> {"detector": [...], "CLIP top-2": [...]}


class Explorer:
    def __init__(self, p: Params, cat: pd.DataFrame, alignment: str | None = None):
        self.p, self.cat = p, cat
        self.alignment = alignment or p.alignments[0]
        if p.sources != 2:
            raise MissingRun(
                f"the explorer mixes two sources, a foreground over a background (the paper's setting); the run "
                f"'{p.name}' has sources: {p.sources}: its separated images are in notebooks 04 and 10"
            )
        needed = [
            p.weight_path("sound2scene_checkpoint"),
            p.weight_path("icgan_folder"),  # read_icgan_state picks best0 or best1 as IC-GAN does
            separators.separator_folder(p, self.alignment) / "best.pt",
        ]
        missing = [str(f) for f in needed if not f.exists()]
        if missing:
            raise MissingRun(
                f"the run '{p.name}' has no trained parts yet ({', '.join(missing)}). Make them "
                f"with: python -m avgas run params/{p.name}.yaml --only 01,02,03 "
                f"(or the whole run: python -m avgas run params/{p.name}.yaml)"
            )
        self.fa, _, self.G = checkpoints.load_parts(p)
        self.separator = separators.load_separator(p, self.alignment)
        res = self.G.resolution
        self.clip = judges.clip.judge(p, cat, res, progress=False)
        # the detector at the threshold CRS uses (chosen on validation for the synthetic judge)
        self.detector = judges.detector.judge(p, cat, res, progress=False, clip=self.clip)
        self.words, self.prompts = judges.vocabulary(p), paper.prompts()
        self.by_stem = cat.set_index("stem")
        test = cat[cat["split"] == "test"]
        self.clips = {lab: list(g["stem"]) for lab, g in test.groupby("label")}
        self.combinations = {}
        for fg, bg in p.combination_list():
            self.combinations.setdefault(bg, []).append(fg)

    def state(
        self,
        fg: str,
        bg: str,
        lam: float = 0.5,
        level_db: float = 0.0,
        seed: int = 0,
        fg_clip: int = 0,
        bg_clip: int = 0,
    ) -> State:
        stems = (self.clips[fg][fg_clip % len(self.clips[fg])], self.clips[bg][bg_clip % len(self.clips[bg])])
        fg_w, bg_w = (spec.load_wave(self.by_stem.loc[s, "audio"], self.p.clip_seconds) for s in stems)
        mix_w = data.mix(fg_w, bg_w, level_db)
        s = spec.spectrogram(torch.from_numpy(mix_w).float()[None])
        h_fg, h_bg = separator.separate(self.separator, s)
        feats = {
            f"separated: {fg}": h_fg,
            f"separated: {bg}": h_bg,
            f"mixed, λ={lam:.2f}": generation.blend(h_fg, h_bg, lam),
            "Sound2Scene f_A(mix)": separator.embed_mix(self.fa, s),
        }
        z = generation.noise(1, self.G.dim_z, seed)
        images = {k: generation.from_unit(generation.sample(self.G, h, z))[0] for k, h in feats.items()}
        batch = torch.stack(list(images.values()))
        found, top2 = self.detector.words(batch), self.clip.words(batch, k=2)
        verdicts = {k: {"detector": sorted(f), "CLIP top-2": t} for k, f, t in zip(images, found, top2)}
        return State(fg, bg, {"mix": mix_w, "foreground": fg_w, "background": bg_w}, s[0], images, verdicts)

    def show(self, **kw) -> State:
        st = self.state(**kw)
        want = {self.prompts[st.fg], self.prompts[st.bg]}
        fig, axes = plt.subplots(1, 1 + len(st.images), figsize=(3.2 * (1 + len(st.images)), 3.4))
        report._show_spec(axes[0], st.spectrogram, f"mixed: {st.fg}\n+ {st.bg}")
        for ax, (name, img) in zip(axes[1:], st.images.items()):
            ax.imshow(img.numpy())
            ax.axis("off")
            v = st.verdicts[name]
            ok = _both_found(name, v, want)
            ax.set_title(
                f"{name}\ndetector: {', '.join(v['detector']) or '—'}\nCLIP: {', '.join(v['CLIP top-2'])}"
                + ("" if ok is None else ("\nboth found ✓" if ok else "\nnot both ✗")),
                fontsize=8,
            )
        fig.tight_layout()
        plt.show()
        display(
            HTML(
                "<table><tr><th>mix</th><th>foreground</th><th>background</th></tr><tr>"
                + "".join(f"<td>{report.audio_html(st.waves[k])}</td>" for k in ("mix", "foreground", "background"))
                + "</tr></table>"
            )
        )
        return st

    # ------------------------------------------------------------------ the live view
    #
    # The live view is HTML, one small picture per panel in a row that wraps: it fits any output
    # area (a 5-panel matplotlib figure was wider than JupyterLab's), each panel can be checked on
    # its own (a browser test compares the mixed panel before and after λ moves), and a failed draw
    # says why instead of leaving a blank figure.

    def panels_html(self, st: State, lam: float, level_db: float) -> str:
        want = {self.prompts[st.fg], self.prompts[st.bg]}
        fig, ax = plt.subplots(figsize=(2.2, 2.0))
        report._show_spec(ax, st.spectrogram, f"mixed: {st.fg}\n+ {st.bg}")
        fig.tight_layout()
        cards = [_card("spectrogram", "mixed spectrogram", _fig_png(fig), "")]
        plt.close(fig)
        for name, img in st.images.items():
            v = st.verdicts[name]
            found = _both_found(name, v, want)
            ok = "" if found is None else ("both found ✓" if found else "not both ✗")
            text = f"detector: {', '.join(v['detector']) or '—'}<br>CLIP: {', '.join(v['CLIP top-2'])}"
            cards.append(_card(_kind(name), html.escape(name), _png(img.numpy()), text + (f"<br>{ok}" if ok else "")))
        players = "".join(
            f"<td>{k}<br>{report.audio_html(st.waves[k])}</td>" for k in ("mix", "foreground", "background")
        )
        return (
            f'<div class="avgas-explorer" data-fg="{html.escape(st.fg)}" data-bg="{html.escape(st.bg)}" '
            f'data-lam="{lam:.2f}" data-level="{level_db:g}">'
            f'<div style="display:flex;flex-wrap:wrap;gap:6px">{"".join(cards)}</div>'
            f"<table><tr>{players}</tr></table></div>"
        )

    def widget(self):
        """Dropdowns for the background and foreground class (the foregrounds of the chosen
        background), clip indices, sliders for λ, the relative level and the noise seed. Every
        change redraws once: a new background sets its first foreground without a second draw."""
        wide = {"style": {"description_width": "initial"}, "layout": w.Layout(width="max-content")}
        bg = w.Dropdown(options=list(self.combinations), description="background", **wide)
        fg = w.Dropdown(options=self.combinations[bg.value], description="foreground", **wide)
        lam = w.FloatSlider(value=self.p.mix_lambda, min=0, max=1, step=0.05, description="λ")
        level = w.FloatSlider(value=0, min=-30, max=10, step=1, description="fg level dB")
        seed = w.IntSlider(value=0, min=0, max=50, description="noise seed")
        fg_clip = w.IntSlider(value=0, min=0, max=20, description="fg clip")
        bg_clip = w.IntSlider(value=0, min=0, max=20, description="bg clip")
        out = w.HTML(layout=w.Layout(width="100%"))
        status = w.HTML()
        holding = [False]

        def redraw(*_):
            if holding[0]:
                return
            status.value = "<i>drawing…</i>"
            kw = dict(
                lam=lam.value, level_db=level.value, seed=seed.value, fg_clip=fg_clip.value, bg_clip=bg_clip.value
            )
            try:
                st = self.state(fg=fg.value, bg=bg.value, **kw)
                out.value = self.panels_html(st, lam.value, level.value)
                status.value = ""
            except Exception as e:  # shown, never a silently blank view
                status.value = f'<span class="avgas-error">could not draw this state: {type(e).__name__}: {e}</span>'

        def new_background(change):
            holding[0] = True  # setting the options moves fg to the first one: one draw, not two
            try:
                fg.options = self.combinations[change["new"]]
            finally:
                holding[0] = False
            redraw()

        bg.observe(new_background, names="value")
        for c in (fg, lam, level, seed, fg_clip, bg_clip):
            c.observe(redraw, names="value")
        redraw()
        return w.VBox(
            [w.HBox([bg, fg]), w.HBox([lam, level, seed]), w.HBox([fg_clip, bg_clip]), status, out],
            layout=w.Layout(width="100%"),
        )


def _both_found(name: str, verdict: dict, want: set) -> bool | None:
    """For an image of the whole mix (mixed, baseline): did the detector find both classes?"""
    return want <= set(verdict["detector"]) if name.startswith(("mixed", "Sound2Scene")) else None


def _kind(name: str) -> str:
    return name.split(":")[0].split(",")[0].split(" ")[0].lower()  # separated / mixed / sound2scene


def _png(img) -> bytes:
    """A generated image (R, R, 3) uint8 as PNG, enlarged without smoothing to 160 px."""
    buf = io.BytesIO()
    Image.fromarray(img).resize((160, 160), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def _card(kind: str, title: str, png: bytes, text: str) -> str:
    src = "data:image/png;base64," + base64.b64encode(png).decode()
    return (
        f'<figure class="avgas-panel" data-kind="{kind}" style="margin:0;width:170px;font-size:11px">'
        f'<img src="{src}" style="width:160px"><figcaption><b>{title}</b><br>{text}</figcaption></figure>'
    )
