"""Duplicate clips: the same video under two ids, found by its sound or its picture.

VGGSound holds some videos twice under different YouTube ids (users of later audio-visual models
report test clips that are training clips). A clip in both the training and the test tuples
inflates every score, so before the splits are made every prepared clip gets two fingerprints:

- **audio**: the decoded 16 kHz PCM of its first `AUDIO_SECONDS` hashed at coarse resolution, in
  the manner of Haitsma & Kalker's robust hash: log energies of 17 bands in 17 time slices, one bit
  per (slice, band) for the sign of the change of the band-to-band difference from one slice to
  the next (256 bits). Gains, re-encoding and small noise leave most bits unchanged; a different
  sound flips about half of them. Two clips whose bits differ in at most `AUDIO_MAX_BITS` are the
  same sound.
- **image**: a difference hash of the clip's frame (64 bits: is each pixel of a 9 x 8 grey
  thumbnail brighter than its right neighbour). Two frames within `IMAGE_MAX_BITS` are the same
  picture.

Two clips are the same clip when their sounds match, or when their frames match and their sounds
are at least alike (within `AUDIO_ALIKE_BITS`: the same sound re-encoded harder or shifted a
little). The frame alone is not enough: a still picture under different sounds (VGGSound's
album-cover videos; the synthetic world's class pictures, whose frames hash alike) is not one clip,
and a flat frame (a black screen) is never matched. Matching clips are joined into groups
(union-find); `prepare-vggsound` keeps the first clip
of each group in the csv's order, lists the others in its skip-list and the groups in ingest.json,
and `data.catalogue` makes its splits over groups, so no group spans two splits.

What it does not find: the same video cut at another start time (both fingerprints are aligned to
the clip's start) or re-edited with another soundtrack and another frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from avgas.layout import IMAGE_SUFFIXES
from avgas.runfolder import DataFolder

AUDIO_SECONDS = 5.0  # the fingerprinted start of each clip (prepare-vggsound's default min_clip_seconds)
AUDIO_SLICES, AUDIO_BANDS = 17, 17  # -> 16 x 16 = 256 bits
AUDIO_MAX_BITS = 24  # of 256: about 9% of the bits may differ (re-encoding flips a few percent)
AUDIO_ALIKE_BITS = 40  # of 256, with matching frames (distinct sounds differ in about half; the
#                        synthetic world's closest two clips of one class in 46)
IMAGE_MAX_BITS = 4  # of 64
IMAGE_MIN_STD = 3.0  # grey levels (of 255) of the 9 x 8 thumbnail: flatter frames are not matched


@dataclass
class Fingerprint:
    audio: int | None  # 256 bits, or None when the clip is too short to hash
    image: int | None  # 64 bits, or None when the frame is flat

    def to_json(self) -> list:
        return [
            None if self.audio is None else f"{self.audio:064x}",
            None if self.image is None else f"{self.image:016x}",
        ]

    @classmethod
    def from_json(cls, v: list) -> Fingerprint:
        return cls(None if v[0] is None else int(v[0], 16), None if v[1] is None else int(v[1], 16))


def audio_bits(wave: np.ndarray, sr: int) -> int | None:
    """The 256-bit coarse hash of a mono wave's first AUDIO_SECONDS (shorter clips: all of it)."""
    x = np.asarray(wave, dtype=np.float64)
    if x.ndim > 1:
        x = x.mean(axis=1)
    x = x[: int(AUDIO_SECONDS * sr)]
    n = len(x) // AUDIO_SLICES
    if n < 64:
        return None
    frames = x[: n * AUDIO_SLICES].reshape(AUDIO_SLICES, n)
    power = np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1 / sr)
    edges = np.geomspace(100.0, min(6000.0, sr / 2), AUDIO_BANDS + 1)
    bands = np.stack(
        [power[:, (freqs >= lo) & (freqs < hi)].sum(axis=1) for lo, hi in zip(edges[:-1], edges[1:])], axis=1
    )
    energy = np.log(bands + 1e-10)
    d = np.diff(np.diff(energy, axis=1), axis=0)  # (16, 16): change over time of band-to-band steps
    return _pack(d.ravel() > 0)


def image_bits(path: str | Path) -> int | None:
    """The 64-bit difference hash of an image file, or None when the frame is flat."""
    with Image.open(path) as im:
        g = np.asarray(im.convert("L").resize((9, 8), Image.BILINEAR), dtype=np.float64)
    if g.std() < IMAGE_MIN_STD:
        return None
    return _pack((g[:, 1:] > g[:, :-1]).ravel())


def _pack(bits: np.ndarray) -> int:
    return int("".join("1" if b else "0" for b in bits), 2)


def fingerprint(wav: str | Path, image: str | Path) -> Fingerprint:
    """Both fingerprints of a prepared clip (its wav and its frame)."""
    wave, sr = sf.read(str(wav), dtype="float32", always_2d=True, frames=int(AUDIO_SECONDS * 48000))
    return Fingerprint(audio_bits(wave, sr), image_bits(image))


def _words(values: list[int | None], bits: int) -> np.ndarray:
    """Each value as bits // 64 uint64 words (None as zeros)."""
    words = bits // 64
    mask = (1 << 64) - 1
    return np.array(
        [[((v or 0) >> (64 * (words - 1 - w))) & mask for w in range(words)] for v in values], dtype=np.uint64
    ).reshape(len(values), words)


def _close_pairs(prints: list[Fingerprint]) -> list[tuple[int, int, str]]:
    """(i, j, what matched) for i < j: the same sound, or the same frame with a sound alike."""
    audio, image = _words([f.audio for f in prints], 256), _words([f.image for f in prints], 64)
    has_audio = np.array([f.audio is not None for f in prints])
    has_image = np.array([f.image is not None for f in prints])
    pairs = []
    for a in range(len(prints) - 1):  # row by row: memory O(n), time O(n^2) popcounts (fast)
        da = np.bitwise_count(audio[a + 1 :] ^ audio[a]).sum(axis=1)
        di = np.bitwise_count(image[a + 1 :] ^ image[a]).sum(axis=1)
        both = has_audio[a] & has_audio[a + 1 :]
        sound = both & (da <= AUDIO_MAX_BITS)
        frame = both & (da <= AUDIO_ALIKE_BITS) & has_image[a] & has_image[a + 1 :] & (di <= IMAGE_MAX_BITS)
        for b in np.nonzero(sound | frame)[0]:
            what = "+".join(k for k, hit in (("audio", sound[b]), ("image", frame[b])) if hit)
            pairs.append((a, a + 1 + int(b), what))
    return pairs


@dataclass
class Groups:
    """Duplicate groups over an ordered list of clips: each group's first clip is kept."""

    groups: list[dict] = field(default_factory=list)  # {"kept": stem, "dropped": [stems], "by": [...]}

    @property
    def dropped(self) -> dict[str, tuple[str, str]]:
        """stem -> (the kept clip of its group, what matched)."""
        return {s: (g["kept"], "+".join(g["by"])) for g in self.groups for s in g["dropped"]}

    def group_of(self) -> dict[str, str]:
        """stem -> its group's kept clip, for every clip of a group."""
        return {s: g["kept"] for g in self.groups for s in [g["kept"], *g["dropped"]]}


def find(stems: list[str], prints: list[Fingerprint]) -> Groups:
    """Groups of clips that are the same clip (module docstring), in the order of `stems`."""
    parent = list(range(len(stems)))
    how: dict[int, set] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j, what in _close_pairs(prints):
        ri, rj = root(i), root(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)  # the earlier clip stays the root: it is kept
            how.setdefault(min(ri, rj), set()).update(how.pop(max(ri, rj), set()))
        how.setdefault(min(ri, rj), set()).update(what.split("+"))
    members: dict[int, list[int]] = {}
    for i in range(len(stems)):
        members.setdefault(root(i), []).append(i)
    groups = [
        {"kept": stems[r], "dropped": [stems[i] for i in m[1:]], "by": sorted(how.get(r, set()))}
        for r, m in sorted(members.items())
        if len(m) > 1
    ]
    return Groups(groups)


def recorded(data_dir: Path) -> Groups:
    """The duplicate groups prepare-vggsound recorded in <data_dir>/ingest.json (none if absent)."""
    f = DataFolder(data_dir).ingest
    if not f.is_file():
        return Groups()
    try:
        return Groups(json.loads(f.read_text()).get("duplicate_groups") or [])
    except ValueError:
        return Groups()


def of_folder(data_dir: Path, stems: list[str], image_of: dict | None = None) -> Groups:
    """Duplicate groups among prepared clips of a data folder (audios/<stem>.wav and their images),
    in the order of `stems`: the same check for the synthetic world as for VGGSound."""
    d = DataFolder(data_dir)
    prints = []
    for s in stems:
        image = (image_of or {}).get(s) or next(d.image(s, suf) for suf in IMAGE_SUFFIXES if d.image(s, suf).is_file())
        prints.append(fingerprint(d.audio(s), image))
    return find(stems, prints)
