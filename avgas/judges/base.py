"""One shape for every judge, in both worlds: what each judge's one factory returns
(judges.detector.judge, judges.clip.judge, judges.classifier.judge). The notebooks, the loudness
sweep, the validation scores, the selection job and the explorer all get their judges from these."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Judge:
    """name: how results.json and the tables call it; report: its checks ('validation',
    'held-out'), as measured when it was built; size: the resolution of the images it is given (the
    generator's); settings: what it is a function of (synthetic: its instrument-store key, never a
    separator setting; real: its weights file and fixed settings). `score` is its scoring callable."""

    name: str
    report: dict = field(repr=False)
    size: int
    settings: dict = field(default_factory=dict, repr=False)

    def score(self, *args, **kwargs):
        """The judge's scoring callable (a class judge: hits; FID/IS: the set's scores)."""
        raise NotImplementedError


@dataclass
class ClassJudge(Judge):
    """A judge that says which classes an image shows (CRS's detector, R@K's CLIP)."""

    def words(self, images: torch.Tensor) -> list:
        """What the judge sees in each uint8 image (N, H, W, 3), as Table 5's words."""
        raise NotImplementedError

    def hits(self, images: torch.Tensor, wanted: list[set]) -> np.ndarray:
        """Per image: does the judge see every wanted word? (CRS: all found; R@K: all among the
        top len(wanted), so R@2* for a mixed image's two classes and R@1 for a separated one)."""
        raise NotImplementedError

    def score(self, images: torch.Tensor, wanted: list[set]) -> np.ndarray:
        """Per image, success (hits): Eq. 5's term for the detector, R@K's for CLIP."""
        return self.hits(images, wanted)
