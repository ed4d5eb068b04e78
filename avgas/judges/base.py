"""One interface for the judges that say which classes an image shows (CRS's detector, R@K's CLIP),
in both worlds: the notebooks, the loudness sweep, the validation scores and the explorer all ask
a Judge the same two questions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Judge:
    """name: how results.json and the tables call it; report: its checks both ways
    ('validation', 'held-out'); size: the resolution of the images it is given (the generator's)."""

    name: str
    report: dict = field(repr=False)
    size: int

    def words(self, images: torch.Tensor) -> list:
        """What the judge sees in each uint8 image (N, H, W, 3), as Table 5's words."""
        raise NotImplementedError

    def hits(self, images: torch.Tensor, wanted: list[set]) -> np.ndarray:
        """Per image: does the judge see every wanted word? (CRS: all found; R@K: all among the
        top len(wanted), so R@2* for a mixed image's two classes and R@1 for a separated one)."""
        raise NotImplementedError
