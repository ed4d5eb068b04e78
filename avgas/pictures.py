"""Image designs of the synthetic world.

Background classes are scenes that fill the frame (rain, sea, a stream, a volcano, a waterfall,
an aquarium). Foreground classes are objects with a class-specific shape and colour, drawn large
and near the centre (a stand-in generator must be able to paint them recognisably), on a plain
backdrop for single-class images, or on a background scene for composites (the judges' training
scenes and the "both classes" pictures). Classes that share a prompt in Table 5 share a shape
family (three kinds of person, two trucks, two birds, two trains) and differ in colour and detail.

Shapes are described in unit coordinates ([-1, 1]^2, y down) and drawn with PIL at 4x size, then
downsampled, which anti-aliases the edges.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

SS = 4  # supersampling factor

# -------------------------------------------------------------------------------- primitives
# A shape is a list of (kind, geometry, colour) in unit coordinates:
#   ("ellipse", (cx, cy, rx, ry), rgb)   ("rect", (x0, y0, x1, y1), rgb)
#   ("poly", [(x, y), ...], rgb)         ("line", ([(x, y), ...], width), rgb)


def _jitter(rgb, rng, amount=12):
    return tuple(int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)


def _draw_shape(draw: ImageDraw.ImageDraw, shape, cx, cy, scale, flip, rng):
    def px(x, y):
        return (cx + (-x if flip else x) * scale, cy + y * scale)

    for kind, geo, rgb in shape:
        col = _jitter(rgb, rng, 10)
        if kind == "ellipse":
            x, y, rx, ry = geo
            (ax, ay), (bx, by) = px(x - rx, y - ry), px(x + rx, y + ry)
            draw.ellipse([min(ax, bx), ay, max(ax, bx), by], fill=col)
        elif kind == "rect":
            x0, y0, x1, y1 = geo
            (ax, ay), (bx, by) = px(x0, y0), px(x1, y1)
            draw.rectangle([min(ax, bx), ay, max(ax, bx), by], fill=col)
        elif kind == "poly":
            draw.polygon([px(x, y) for x, y in geo], fill=col)
        elif kind == "line":
            pts, width = geo
            draw.line([px(x, y) for x, y in pts], fill=col, width=max(1, int(width * scale)), joint="curve")


def _wheels(xs, y, r=0.17, rgb=(25, 25, 25)):
    return [("ellipse", (x, y, r, r), rgb) for x in xs]


def _person(x, y, s, shirt, arms_up=False, skin=(235, 190, 150)):
    arms = (
        (
            [(x - 0.28 * s, y - 0.1 * s), (x - 0.5 * s, y - 0.75 * s)],
            [(x + 0.28 * s, y - 0.1 * s), (x + 0.5 * s, y - 0.75 * s)],
        )
        if arms_up
        else (
            [(x - 0.28 * s, y - 0.1 * s), (x - 0.42 * s, y + 0.45 * s)],
            [(x + 0.28 * s, y - 0.1 * s), (x + 0.42 * s, y + 0.45 * s)],
        )
    )
    return [
        ("line", (arms[0], 0.13 * s), shirt),
        ("line", (arms[1], 0.13 * s), shirt),
        ("rect", (x - 0.3 * s, y - 0.22 * s, x + 0.3 * s, y + 0.5 * s), shirt),
        ("rect", (x - 0.25 * s, y + 0.5 * s, x + 0.25 * s, y + 0.95 * s), (40, 40, 70)),
        ("ellipse", (x, y - 0.45 * s, 0.22 * s, 0.22 * s), skin),
    ]


def _truck(body, top):
    return (
        [
            ("rect", (-0.95, -0.45, 0.35, 0.42), body),
            ("rect", (0.35, -0.15, 0.95, 0.42), body),
            ("rect", (0.5, -0.05, 0.85, 0.15), (170, 210, 240)),
        ]
        + top
        + _wheels((-0.6, 0.0, 0.65), 0.48)
    )


def _bird(body, head, wing, spots=False):
    s = [
        ("poly", [(-0.45, 0.0), (-1.0, -0.25), (-1.0, 0.3)], wing),
        ("ellipse", (0.0, 0.1, 0.6, 0.4), body),
        ("ellipse", (-0.05, 0.0, 0.38, 0.2), wing),
        ("ellipse", (0.55, -0.3, 0.28, 0.28), head),
        ("poly", [(0.78, -0.38), (1.0, -0.28), (0.78, -0.2)], (60, 50, 40)),
        ("ellipse", (0.62, -0.36, 0.05, 0.05), (0, 0, 0)),
    ]
    if spots:
        s += [
            ("ellipse", (x, y, 0.06, 0.06), (60, 40, 30))
            for x, y in [(0.1, 0.25), (0.3, 0.3), (-0.1, 0.35), (0.25, 0.1), (0.0, 0.2)]
        ]
    return s


SHAPES: dict[str, list] = {
    "airplane flyby": [
        ("poly", [(-0.15, -0.05), (0.25, -0.05), (-0.05, -0.95), (-0.3, -0.95)], (200, 205, 215)),
        ("poly", [(-0.15, 0.05), (0.25, 0.05), (-0.05, 0.95), (-0.3, 0.95)], (200, 205, 215)),
        ("ellipse", (0.0, 0.0, 0.98, 0.17), (235, 235, 245)),
        ("poly", [(-0.72, 0.0), (-0.98, 0.0), (-1.0, -0.45), (-0.85, -0.45)], (40, 80, 170)),
        ("rect", (-0.6, -0.03, 0.7, 0.03), (40, 80, 170)),
    ],
    "ambulance siren": [
        ("rect", (-0.9, -0.15, 0.9, 0.42), (245, 245, 245)),
        ("rect", (-0.4, -0.55, 0.55, -0.1), (245, 245, 245)),
        ("rect", (-0.9, 0.1, 0.9, 0.2), (220, 30, 30)),
        ("rect", (0.0, -0.45, 0.15, -0.18), (220, 30, 30)),
        ("rect", (-0.07, -0.38, 0.22, -0.25), (220, 30, 30)),
        ("rect", (-0.1, -0.7, 0.1, -0.55), (40, 90, 240)),
    ]
    + _wheels((-0.5, 0.5), 0.48),
    "baltimore oriole calling": _bird((250, 140, 20), (25, 20, 20), (30, 25, 25)),
    "wood thrush calling": _bird((235, 215, 180), (150, 95, 50), (140, 90, 45), spots=True),
    "church bell ringing": [
        ("rect", (-0.5, -0.2, 0.5, 0.95), (225, 205, 160)),
        ("poly", [(-0.62, -0.2), (0.0, -0.8), (0.62, -0.2)], (150, 40, 35)),
        ("line", ([(0.0, -0.8), (0.0, -1.0)], 0.06), (90, 70, 30)),
        ("line", ([(-0.12, -0.92), (0.12, -0.92)], 0.06), (90, 70, 30)),
        ("ellipse", (0.0, 0.1, 0.18, 0.18), (200, 160, 40)),
        ("rect", (-0.15, 0.5, 0.15, 0.95), (90, 55, 30)),
    ],
    "dog barking": [
        ("line", ([(-0.6, 0.0), (-0.9, -0.35)], 0.1), (140, 85, 40)),
        ("ellipse", (0.0, 0.1, 0.65, 0.3), (150, 95, 45)),
        ("rect", (-0.5, 0.2, -0.35, 0.8), (140, 85, 40)),
        ("rect", (0.35, 0.2, 0.5, 0.8), (140, 85, 40)),
        ("ellipse", (0.62, -0.25, 0.3, 0.25), (150, 95, 45)),
        ("poly", [(0.45, -0.45), (0.6, -0.5), (0.5, -0.05)], (90, 55, 25)),
        ("ellipse", (0.88, -0.2, 0.08, 0.07), (20, 20, 20)),
    ],
    "fire truck siren": _truck(
        (210, 25, 25),
        [
            ("line", ([(-0.9, -0.6), (0.3, -0.6)], 0.06), (200, 200, 200)),
            ("line", ([(-0.9, -0.5), (0.3, -0.5)], 0.06), (200, 200, 200)),
        ],
    ),
    "ice cream truck, ice cream van": _truck(
        (250, 170, 200),
        [
            ("poly", [(-0.45, -0.45), (-0.15, -0.45), (-0.3, -0.8)], (215, 160, 90)),
            ("ellipse", (-0.3, -0.88, 0.18, 0.14), (250, 250, 235)),
        ],
    ),
    "gibbon howling": [
        ("line", ([(-0.2, -0.2), (-0.95, -0.9)], 0.12), (50, 40, 35)),
        ("line", ([(0.2, -0.2), (0.95, -0.9)], 0.12), (50, 40, 35)),
        ("ellipse", (0.0, 0.1, 0.28, 0.45), (60, 48, 40)),
        ("line", ([(-0.1, 0.5), (-0.3, 0.9)], 0.1), (50, 40, 35)),
        ("line", ([(0.1, 0.5), (0.3, 0.9)], 0.1), (50, 40, 35)),
        ("ellipse", (0.0, -0.5, 0.24, 0.24), (60, 48, 40)),
        ("ellipse", (0.0, -0.45, 0.13, 0.12), (200, 175, 150)),
    ],
    "orchestra": sum(
        [
            [
                ("ellipse", (x, 0.25, 0.17, 0.3), (20, 20, 20)),
                ("ellipse", (x, -0.2, 0.12, 0.12), (235, 190, 150)),
                ("ellipse", (x + 0.12, 0.3, 0.1, 0.2), (200, 150, 40)),
                ("line", ([(x - 0.2, -0.05), (x + 0.3, 0.55)], 0.03), (230, 220, 200)),
            ]
            for x in (-0.7, 0.0, 0.7)
        ],
        [("rect", (-1.0, 0.6, 1.0, 0.75), (120, 70, 30))],
    ),
    "people cheering": _person(0.0, 0.0, 1.0, (245, 210, 30), arms_up=True),
    "people crowd": sum(
        [
            _person(x, y, 0.55, c)
            for x, y, c in [
                (-0.55, -0.2, (60, 120, 200)),
                (0.55, -0.2, (60, 160, 80)),
                (0.0, 0.1, (200, 90, 60)),
                (-0.4, 0.35, (120, 120, 120)),
                (0.45, 0.35, (150, 80, 160)),
            ]
        ],
        [],
    ),
    "singing choir": sum(
        [
            _person(x, 0.05, 0.6, (110, 40, 150))
            + [("ellipse", (x, -0.12, 0.1, 0.06), (245, 245, 245)), ("ellipse", (x, -0.22, 0.05, 0.04), (80, 20, 20))]
            for x in (-0.6, 0.0, 0.6)
        ],
        [],
    ),
    "playing drum kit": [
        ("rect", (-0.6, -0.3, 0.6, 0.6), (30, 70, 200)),
        ("ellipse", (0.0, 0.6, 0.6, 0.17), (30, 70, 200)),
        ("ellipse", (0.0, -0.3, 0.6, 0.17), (230, 230, 225)),
        ("line", ([(-0.6, 0.15), (0.6, 0.15)], 0.05), (220, 200, 60)),
        ("line", ([(-0.2, -0.35), (-0.7, -0.9)], 0.06), (200, 160, 100)),
        ("line", ([(0.2, -0.35), (0.7, -0.9)], 0.06), (200, 160, 100)),
    ],
    "playing harp": [("line", ([(-0.55, 0.9), (-0.55, -0.9), (0.6, 0.5), (-0.55, 0.9)], 0.14), (210, 165, 40))]
    + [
        ("line", ([(x, 0.9 - 0.0 * x), (x, -0.9 + 1.2 * (x + 0.55) / 1.15)], 0.025), (240, 235, 220))
        for x in np.linspace(-0.4, 0.45, 7)
    ],
    "railroad car, train wagon": [
        ("rect", (-0.98, -0.45, 0.98, 0.38), (40, 130, 60)),
        ("rect", (-0.98, -0.55, 0.98, -0.42), (30, 90, 45)),
    ]
    + [("rect", (x - 0.15, -0.3, x + 0.15, 0.0), (245, 230, 150)) for x in (-0.6, -0.2, 0.2, 0.6)]
    + _wheels((-0.7, -0.45, 0.45, 0.7), 0.45, 0.13),
    "train horning": [
        ("rect", (-0.95, -0.2, 0.45, 0.42), (30, 30, 35)),
        ("rect", (0.3, -0.62, 0.95, 0.42), (190, 30, 30)),
        ("rect", (0.45, -0.5, 0.8, -0.25), (250, 230, 140)),
        ("rect", (-0.75, -0.65, -0.5, -0.2), (30, 30, 35)),
        ("poly", [(-0.95, 0.42), (-0.95, 0.05), (-1.0, 0.42)], (190, 30, 30)),
    ]
    + _wheels((-0.6, -0.15, 0.55), 0.5, 0.2, (190, 30, 30)),
    "sheep bleating": [
        ("ellipse", (x, y, 0.3, 0.26), (245, 245, 240))
        for x, y in [(-0.4, 0.0), (0.0, -0.12), (0.35, 0.0), (-0.2, 0.22), (0.18, 0.22)]
    ]
    + [
        ("rect", (-0.4, 0.3, -0.28, 0.85), (25, 25, 25)),
        ("rect", (0.2, 0.3, 0.32, 0.85), (25, 25, 25)),
        ("ellipse", (0.72, -0.15, 0.22, 0.17), (30, 30, 30)),
    ],
    "slot machine": [
        ("rect", (-0.6, -0.85, 0.6, 0.95), (200, 30, 40)),
        ("rect", (-0.48, -0.45, 0.48, 0.1), (250, 250, 250)),
        ("ellipse", (-0.3, -0.17, 0.11, 0.16), (240, 200, 20)),
        ("ellipse", (0.0, -0.17, 0.11, 0.16), (240, 200, 20)),
        ("ellipse", (0.3, -0.17, 0.11, 0.16), (240, 200, 20)),
        ("rect", (-0.5, -0.8, 0.5, -0.58), (250, 210, 40)),
        ("line", ([(0.62, 0.2), (0.85, 0.2), (0.85, -0.6)], 0.06), (160, 160, 170)),
        ("ellipse", (0.85, -0.65, 0.1, 0.1), (30, 30, 30)),
    ],
    "snake hissing": [
        ("line", ([(x, 0.45 * np.sin(2.6 * x)) for x in np.linspace(-0.95, 0.75, 18)], 0.24), (70, 160, 40)),
        ("ellipse", (0.85, 0.45 * np.sin(2.6 * 0.85), 0.18, 0.14), (70, 160, 40)),
        ("line", ([(x, 0.45 * np.sin(2.6 * x)) for x in np.linspace(-0.9, 0.7, 18)], 0.06), (230, 210, 60)),
    ],
}


def _backdrop(size: int, rng) -> np.ndarray:
    """Plain, slightly lit backdrop for single-object images."""
    base = np.array(_jitter((205, 205, 198), rng, 8), dtype=float)
    yy = np.linspace(-1, 1, size)[:, None, None]
    return np.broadcast_to(base * (1 + 0.06 * yy), (size, size, 3)).copy()


# ---------------------------------------------------------------------------------- backgrounds


def _vgrad(size, top, bottom):
    a = np.linspace(0, 1, size)[:, None, None]
    return (1 - a) * np.array(top, float) + a * np.array(bottom, float) + np.zeros((size, size, 3))


def _scene_hail(img: Image.Image, d, s, rng):
    for _ in range(int(rng.integers(110, 150))):  # falling ice streaks
        x, y = rng.uniform(0, s), rng.uniform(0, s)
        d.line(
            [(x, y), (x - 0.04 * s, y + 0.09 * s)], fill=_jitter((235, 240, 250), rng, 10), width=max(1, int(0.012 * s))
        )


def _scene_sea(img, d, s, rng):
    d.rectangle([0, 0, s, 0.32 * s], fill=_jitter((150, 200, 240), rng))
    phase = rng.uniform(0, 2 * np.pi)
    for k, y0 in enumerate(np.linspace(0.42, 0.95, 6)):  # rows of wave crests
        pts = [(x, (y0 + 0.025 * np.sin(12 * x / s + phase + k)) * s) for x in np.linspace(0, s, 40)]
        d.line(pts, fill=(235, 245, 255), width=max(1, int(0.02 * s)))


def _scene_stream(img, d, s, rng):
    w = rng.uniform(0.16, 0.22)
    pts = [(x * s, (0.5 + 0.18 * np.sin(5 * x + rng.uniform(-0.3, 0.3))) * s) for x in np.linspace(-0.1, 1.1, 40)]
    d.line(pts, fill=_jitter((60, 120, 215), rng), width=int(w * s), joint="curve")
    for _ in range(12):
        x = rng.uniform(0, s)
        y = (0.5 + 0.18 * np.sin(5 * x / s)) * s + rng.uniform(-0.05, 0.05) * s
        d.ellipse([x - 0.02 * s, y - 0.01 * s, x + 0.02 * s, y + 0.01 * s], fill=(220, 235, 255))


def _scene_volcano(img, d, s, rng):
    peak = rng.uniform(0.45, 0.55) * s
    d.polygon(
        [(-0.1 * s, s), (peak - 0.1 * s, 0.3 * s), (peak + 0.1 * s, 0.3 * s), (1.1 * s, s)],
        fill=_jitter((70, 45, 35), rng),
    )
    d.polygon([(peak - 0.1 * s, 0.3 * s), (peak + 0.1 * s, 0.3 * s), (peak + 0.02 * s, 0.55 * s)], fill=(250, 120, 20))
    d.ellipse([peak - 0.22 * s, 0.02 * s, peak + 0.22 * s, 0.3 * s], fill=(120, 110, 110))  # ash cloud


def _scene_waterfall(img, d, s, rng):
    x0 = rng.uniform(0.36, 0.42) * s
    d.rectangle([x0, 0, s - x0, 0.85 * s], fill=_jitter((200, 225, 245), rng))
    for x in np.linspace(x0, s - x0, 7):
        d.line([(x, 0), (x, 0.85 * s)], fill=(160, 200, 235), width=max(1, int(0.01 * s)))
    d.rectangle([0, 0.82 * s, s, s], fill=_jitter((60, 110, 190), rng))


def _scene_underwater(img, d, s, rng):
    d.rectangle([0, 0.86 * s, s, s], fill=_jitter((215, 195, 140), rng))
    for _ in range(int(rng.integers(14, 22))):  # rising bubbles
        x, y, r = rng.uniform(0, s), rng.uniform(0, 0.85 * s), rng.uniform(0.015, 0.045) * s
        d.ellipse([x - r, y - r, x + r, y + r], outline=(220, 245, 250), width=max(1, int(0.008 * s)))


SCENES = {  # background class -> (top colour, bottom colour, painter)
    "hail": ((95, 105, 120), (140, 145, 155), _scene_hail),
    "sea waves": ((150, 200, 240), (20, 70, 150), _scene_sea),
    "stream burbling": ((90, 160, 60), (60, 130, 45), _scene_stream),
    "volcano explosion": ((120, 35, 25), (230, 110, 40), _scene_volcano),
    "waterfall burbling": ((105, 100, 95), (70, 90, 60), _scene_waterfall),
    "underwater bubbling": ((30, 150, 160), (10, 60, 90), _scene_underwater),
}


def _scene(label: str, size: int, rng) -> Image.Image:
    top, bottom, painter = SCENES[label]
    s = size * SS
    arr = _vgrad(s, _jitter(top, rng), _jitter(bottom, rng))
    img = Image.fromarray(arr.clip(0, 255).astype(np.uint8))
    painter(img, ImageDraw.Draw(img), s, rng)
    return img


def shape_extent(label: str) -> tuple[float, float, float, float]:
    """(x0, y0, x1, y1) of a foreground shape in unit coordinates."""
    xs, ys = [], []
    for kind, geo, _ in SHAPES[label]:
        if kind == "ellipse":
            x, y, rx, ry = geo
            xs += [x - rx, x + rx]
            ys += [y - ry, y + ry]
        elif kind == "rect":
            xs += [geo[0], geo[2]]
            ys += [geo[1], geo[3]]
        else:
            pts, pad = (geo, 0.0) if kind == "poly" else (geo[0], geo[1] / 2)
            xs += [x + d for x, _ in pts for d in (-pad, pad)]
            ys += [y + d for _, y in pts for d in (-pad, pad)]
    return min(xs), min(ys), max(xs), max(ys)


def _object_on(img: Image.Image, label: str, rng, slot: int = 0, of: int = 1) -> tuple[Image.Image, tuple]:
    """Draw one object; `of` objects share the frame side by side, this one in column `slot`
    (each 1/of as large, so they do not cover each other)."""
    s = img.size[0]
    scale = rng.uniform(0.36, 0.44) * s / of  # half-size: one object spans ~75-90% of the frame
    cx, cy = (0.5 + rng.uniform(-0.05, 0.05, 2) / of) * s
    cx += ((slot + 0.5) / of - 0.5) * s
    # Objects always face the same way: a flip is a layout change that an embedding of the
    # sound cannot know, and a generator would paint the average of both (a blur).
    _draw_shape(ImageDraw.Draw(img), SHAPES[label], cx, cy, scale, False, rng)
    x0, y0, x1, y1 = shape_extent(label)
    box = tuple(
        float(np.clip(v, 0, 1))
        for v in ((cx + x0 * scale) / s, (cy + y0 * scale) / s, (cx + x1 * scale) / s, (cy + y1 * scale) / s)
    )
    return img, box


def _finish(img: Image.Image, size: int) -> Image.Image:
    return img.resize((size, size), Image.LANCZOS)


def draw(label: str, rng: np.random.Generator, size: int) -> Image.Image:
    """The single-class image of one clip: a scene for a background class, an object on a plain
    backdrop for a foreground class."""
    if label in SCENES:
        return _finish(_scene(label, size, rng), size)
    back = Image.fromarray(_backdrop(size * SS, rng).clip(0, 255).astype(np.uint8))
    return _finish(_object_on(back, label, rng)[0], size)


def composite(foreground: str, background: str, rng: np.random.Generator, size: int, with_box: bool = False):
    """A scene holding both classes: the foreground object on the background scene. With
    with_box, also the object's box (x0, y0, x1, y1), normalised to [0, 1]."""
    img, box = _object_on(_scene(background, size, rng), foreground, rng)
    return (_finish(img, size), box) if with_box else _finish(img, size)


def composite_many(foregrounds, background: str, rng: np.random.Generator, size: int, with_box: bool = False):
    """A scene holding every class of a K-source group: the foreground objects side by side on the
    background scene (one foreground: exactly `composite`). With with_box, also their boxes."""
    img = _scene(background, size, rng)
    boxes = []
    for slot, fg in enumerate(foregrounds):
        img, box = _object_on(img, fg, rng, slot, len(foregrounds))
        boxes.append(box)
    return (_finish(img, size), boxes) if with_box else _finish(img, size)
