"""`hierarchical_shapes` version 2.0.0: 6 families × 4 shared details.

Kept so that results measured on 2.0.0 stay reproducible: TFDS builder
`hierarchical_shapes_v2` (its examples are those of
`hierarchical_shapes:2.0.0`, image for image). Version 3.0.0 replaced it
because its tree is a cross-product, not a hierarchy of visual similarity:
the same 4 details (solid, outline, striped, half) occur in every family
and change far more pixels than the family's silhouette, so an outline disk
looks more like an outline square than like a solid disk, and no
representation (not even a supervised CNN) orders the classes by the tree
(docs/data.md, "Why version 3.0.0").

The tree, 2 super-families → 6 families → 24 fine:

  round   : disk, ellipse, clover        (curved outlines)
  angular : square, triangle, cross      (straight edges and corners)
  each family × detail ∈ {solid, outline, striped, half}

`fine = 4·family + detail`, `coarse = fine // 4`, `super = coarse // 3`.
The nuisance renderer `render_sdf` (illumination level and ramp, tint,
pose, pixel noise) is shared with 3.0.0.
"""

import numpy as np

from ssljax.data import shapes_v1

SUPERS = ("round", "angular")
FAMILIES = ("disk", "ellipse", "clover", "square", "triangle", "cross")
DETAILS = ("solid", "outline", "striped", "half")
FINE_NAMES = tuple(f"{f}_{d}" for f in FAMILIES for d in DETAILS)
NUM_FINE = len(FINE_NAMES)
SPLIT_IDS = shapes_v1.SPLIT_IDS
_V2_TAG = 2  # in the seed sequence: 2.0.0 never reuses 1.0.0's draws.


def _family_sdf(family, u, v, r):
  if family == 0:  # disk
    return np.hypot(u, v) - r
  if family == 1:  # ellipse, axes 1.1r x 0.6r (scaled-disk SDF: a bound)
    return (np.hypot(u / 1.1, v / 0.6) - r) * 0.6
  if family == 2:  # clover: three overlapping disks
    lobes = [np.hypot(u - 0.45 * r * np.cos(a), v - 0.45 * r * np.sin(a))
             for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3,
                       np.pi / 2 + 4 * np.pi / 3)]
    return np.min(lobes, axis=0) - 0.58 * r
  if family == 3:  # square
    return shapes_v1.box_sdf(u, v, 0.82 * r, 0.82 * r)
  if family == 4:  # triangle
    return shapes_v1.triangle_sdf(u, v, 1.2 * r)
  return np.minimum(shapes_v1.box_sdf(u, v, r, 0.38 * r),  # cross
                    shapes_v1.box_sdf(u, v, 0.38 * r, r))


def shape_sdf(fine, u, v, r):
  """SDF of 2.0.0 fine class `fine` at shape-frame coordinates (u, v)."""
  family, detail = divmod(int(fine), len(DETAILS))
  d = _family_sdf(family, u, v, r)
  if detail == 1:  # outline, ~0.32 r thick (3-4 px at 32 px)
    w = 0.16 * r
    d = np.abs(d + w) - w
  elif detail == 2:  # stripes across the shape, period 0.8 r
    period = 0.8 * r
    d = np.maximum(d, np.abs(np.mod(v, period) - period / 2) - 0.2 * r)
  elif detail == 3:  # half
    d = np.maximum(d, u)
  return d


def render_sdf(rng, sdf, size):
  """One uint8 (size, size, 3) image of the shape `sdf(u, v, r)` (shape
  frame in pixels, v pointing down, r the drawn size) under the nuisance
  of 2.0.0 and 3.0.0. The draws, in this order: illumination level, ramp
  direction and strength, size r, centre, rotation, luminance offset, tint,
  pixel noise."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
  s = size / 32.0  # geometry is defined at 32 px and scaled.

  # Illumination: a level and a linear ramp of random direction; the ramp
  # spans up to ±0.25 across the image, so crops see different levels.
  level = rng.uniform(0.15, 0.85)
  theta = rng.uniform(0, 2 * np.pi)
  ramp = rng.uniform(0.0, 0.5)
  proj = ((xx - size / 2) * np.cos(theta) + (yy - size / 2) * np.sin(theta))
  lum = level + ramp * proj / size

  r = rng.uniform(9.5, 12.5) * s
  cx, cy = size / 2 + rng.uniform(-3, 3, size=2) * s
  rot = rng.uniform(-np.pi / 6, np.pi / 6)
  dx, dy = xx - cx, yy - cy
  u = np.cos(rot) * dx + np.sin(rot) * dy
  v = -np.sin(rot) * dx + np.cos(rot) * dy
  cover = np.clip(0.5 - sdf(u, v, r), 0.0, 1.0)
  # Towards mid-grey, so the object never clips against the background.
  offset = rng.uniform(0.3, 0.45) * (1.0 if level < 0.5 else -1.0)
  lum = lum + offset * cover

  tint = rng.uniform(0.65, 1.35, size=3).astype(np.float32)
  img = lum[..., None] * tint
  img += rng.normal(0, 0.02, img.shape).astype(np.float32)
  return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def render(rng, fine, size):
  """Renders one uint8 (size, size, 3) image of 2.0.0 class `fine`."""
  return render_sdf(rng, lambda u, v, r: shape_sdf(fine, u, v, r), size)


def example(seed, split, index, size):
  """The `index`-th example of `split` as (uint8 image, fine label)."""
  rng = np.random.default_rng([seed, SPLIT_IDS[split], index, _V2_TAG])
  fine = int(rng.integers(NUM_FINE))
  return render(rng, fine, size), fine


def generate(split, num, size=32, seed=0):
  """Numpy arrays (images n×H×W×3 uint8, fine n, coarse n, super n)."""
  images, labels = zip(*(example(seed, split, i, size) for i in range(num)))
  fine = np.asarray(labels, np.int64)
  return np.stack(images), fine, fine // 4, fine // 12
