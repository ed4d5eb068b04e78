"""The judges of the generated images, and their checks on true scenes.

The paper judges with off-the-shelf models: TorchMetrics' Inception (FID, IS), YOLO-World (CRS)
and CLIP ViT-B/32 (R@K). The synthetic world has none of these, so the project trains small
judges on a judge pool of true images of its own — never on generated ones, never on the
generator's images — and measures each both ways on held-out true images before it judges
anything. Training images are degraded (blur, noise, contrast) so that the soft images of a small
generator are judged on their content, not their sharpness.

Where each judge lives (one file each, both worlds):

- ``classifier.py`` - FID/IS: the scene classifier (synthetic) or Inception (real), as a FidIsJudge
- ``detector.py``   - CRS: YOLOv8n trained here (synthetic) or YOLO-World (real), as a DetectorJudge
- ``clip.py``       - R@K: a small OpenCLIP trained here (synthetic) or ViT-B-32 (real), as a ClipJudge
- ``checks.py``     - the checks both ways, the trust rule, the words an image must show
- ``images.py``     - what a judge sees (judge_view) and the training degradations
- ``base.py``       - the one shape of every judge (Judge: name, report, size, settings, score);
  ClassJudge, the detector's and CLIP's: words(images), hits(images, wanted)

One entry per judge, both worlds, one shape: ``judges.detector.judge(p, cat, size)``,
``judges.clip.judge(p, cat, size)``, ``judges.classifier.judge(p, cat, size)``.
"""

from avgas.core.scores import topk_hits
from avgas.judges import classifier, clip, detector
from avgas.judges.base import ClassJudge, Judge
from avgas.judges.checks import (
    TRUST_FALSE,
    TRUST_RECALL,
    both_ways,
    flag,
    ranked_success,
    trusted,
    vocabulary,
    wanted,
)
from avgas.judges.classifier import FidIsJudge, SceneClassifier
from avgas.judges.clip import (
    CLIP_CONFIG,
    ClipJudge,
    _open_clip,
    clip_file_info,
    clip_similarity,
    load_clip_file,
    load_real_clip,
    recall_at_k,
)
from avgas.judges.detector import (
    REAL_DETECTOR_CONF,
    DetectorJudge,
    _ultralytics,
    choose_conf,
    detect,
    detect_scores,
    detector_file_info,
    load_real_detector,
    load_ultralytics_file,
    ultralytics_device,
)
from avgas.judges.images import degrade, judge_view, to_float
from avgas.protocol import JUDGE_POOL_VERSION

__all__ = [
    "CLIP_CONFIG",
    "ClassJudge",
    "JUDGE_POOL_VERSION",
    "REAL_DETECTOR_CONF",
    "TRUST_FALSE",
    "TRUST_RECALL",
    "ClipJudge",
    "DetectorJudge",
    "FidIsJudge",
    "Judge",
    "SceneClassifier",
    "_open_clip",
    "_ultralytics",
    "both_ways",
    "classifier",
    "clip",
    "choose_conf",
    "clip_file_info",
    "clip_similarity",
    "degrade",
    "detect",
    "detect_scores",
    "detector",
    "detector_file_info",
    "flag",
    "judge_view",
    "load_clip_file",
    "load_real_clip",
    "load_real_detector",
    "load_ultralytics_file",
    "ranked_success",
    "recall_at_k",
    "to_float",
    "topk_hits",
    "trusted",
    "ultralytics_device",
    "vocabulary",
    "wanted",
]
