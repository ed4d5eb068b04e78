# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. Explorer: move the soundscape, watch the images
#
# Pick a background and a foreground class (and which held-out clip of each), then move λ, the
# foreground's level relative to the background, and the generator's noise seed. You see the mixed
# spectrogram, hear the mix and both sources, and get the separated images, the mixed image and the
# Sound2Scene baseline's image — each with what the detector finds and CLIP's two best prompts.
#
# It uses the run's trained parts (params `name`; by default the embedded default run): if they are
# missing, the next cell says which command makes them. In the rendered book the widgets are
# static; run the notebook in JupyterLab to move them.

# %% tags=["parameters"]
params_file = "params/default.yaml"  # the run whose checkpoints are explored
live = None  # live widgets; None = yes, except in a batch run (python -m avgas run)
static_examples = True  # the two drawn states below (the app, python -m avgas explore, leaves them out)

# %%
from IPython.display import display

from avgas import data, explorer, params

P = params.from_notebook(globals())
cat = data.catalogue(P)
try:
    ex = explorer.Explorer(P, cat)
except explorer.MissingRun as e:
    ex = None
    print(e)

# %% [markdown]
# ## One state, drawn statically
# *dog barking* over *hail* at λ = 0.5 and 0 dB — the paper's running example — and the same mix
# with the dog 20 dB quieter: watch which images keep the dog.

# %%
if ex is not None and static_examples:
    fg, bg = P.combination_list()[1] if len(P.combination_list()) > 1 else P.combination_list()[0]
    for level in (0.0, -20.0):
        ex.show(fg=fg, bg=bg, lam=P.mix_lambda, level_db=level, seed=0)

# %% [markdown]
# ## Live
# Move the controls (needs a running kernel: open this notebook in JupyterLab).

# %%
if ex is not None and explorer.live(live):
    display(ex.widget())
elif ex is not None:
    print("batch run: the live controls appear when this notebook runs in JupyterLab")
