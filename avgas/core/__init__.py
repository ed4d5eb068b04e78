"""The paper's method and metrics, and nothing else: tensors in, tensors out.

    separator   f_AV, its inference (separate, matched) and Sound2Scene's f_A(mix)   Sec. 3.2, 3.3.2
    losses      InfoNCE with -L2 logits (Eq. 1), A2A (Eq. 2), A2V (Eq. 3)            Sec. 3.3.1
    generation  G(z, h_j) per source, G(z, lambda h_fg + (1 - lambda) h_bg) (Eq. 4)  Sec. 3.3.2
    scores      CRS's per-image term and CRS (Eq. 5), R@K's per-image term           Sec. 4.1

No params, no file names, no torchrun: it imports nothing else of avgas (the import contract in
pyproject.toml keeps it so). Files, runs and judges live in the layers above.
"""

from avgas.core import generation, losses, scores, separator

__all__ = ["generation", "losses", "scores", "separator"]
