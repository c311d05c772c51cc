"""`hierarchical_shapes`: a generated image dataset with a three-level class tree.

Version 3.0.0 (default). The tree, 2 super-families → 6 families → 24 fine,
ordered by visual similarity: siblings differ by a small, family-specific
change of the silhouette; cousins (same super-family) share the rendering
style and the kind of boundary; the two super-families differ in both.

  round (solid, curved):     disk     plain, notched at the top, bottom, both
                             ellipse  plain, waist, lemon, flat
                             clover   three, four, five, ring
  angular (outlined, edged): square   plain, notch, octagon, bar
                             triangle plain, truncated, door, dot
                             cross    plus, tee, up, latin

Labels: `label` (fine, 24; `fine = 4·family + variant`), `coarse_label`
(family, 6; `fine // 4`) and `super_label` (2; `family // 3`). A variant
is a notch, a hole, a lobe count, a cut corner, a shortened arm or an inner
stroke of 2-4 px at 32 px, smaller than what separates two silhouettes, and no variant kind
is shared by two families, so no "detail" axis cuts across the tree (2.0.0's
defect). Every variant is symmetric under a horizontal flip (the flip
augmentation keeps the class) and distinct under the ±30° rotations (top
and bottom differ; left and right never do).

Nuisance, drawn independently of the class, carries most pixel variance and
is of the kind the standard SSL augmentations make useless as a cross-view
shortcut: global illumination, a linear illumination gradient of random
direction and strength (two crops see different parts of it), a global
colour tint (colour jitter and grayscale perturb it), small shifts and
rotations of the object, and faint pixel noise. There is deliberately no
per-image fine texture: one shared by every crop of an image would let an
SSL method match views without seeing the object (1.0.0's failure). The
renderer and its draws are 2.0.0's (`shapes_v2.render_sdf`): the object is
large (radius 9.5-12.5 px at 32 px, centred within ±3 px), its colour the
background's tint at a luminance offset of 0.3-0.45 towards mid-grey, so
colour says nothing of the class.

Acceptance, measured 2026-12-03 (docs/data.md "Why version 3.0.0";
`benchmarks/dataset_learnability.py`): a supervised CNN (convnet width 32,
15 epochs) reads the fine class, 0.9995 test accuracy, its one error a
sibling; the Spearman of its class-centroid distances against the tree
distance is 0.402 (2.0.0: 0.207; target 0.5, missed); VICReg at the
quickstart budget: linear 0.185 → 0.405 over its random init (+0.22;
target +0.25, missed), and its class centroids follow the tree (Spearman
0.847; every method on 2.0.0: −0.07…+0.02).

Release notes:
  3.0.0: family-specific variants instead of shared details; the
    super-family is also the rendering style (solid vs outlined).
  2.0.0: three-level tree (24/6/2), large objects; the 4 details were
    shared by every family (a cross-product). Builder
    `hierarchical_shapes_v2` (`ssljax.data.shapes_v2`).
  1.0.0: 20 fine / 4 coarse classes on textured backgrounds; builder
    `hierarchical_shapes_v1` (`ssljax.data.shapes_v1`).
(TFDS builds only a builder's current version, so each old generator is a
builder of its own; folders prepared earlier still open by version, e.g.
`hierarchical_shapes/32:2.0.0`.)

Shapes are signed-distance functions (exact or bounds) evaluated at pixel
centres; coverage `clip(0.5 - sdf, 0, 1)` anti-aliases them at any
resolution. Example `i` of a split is drawn from
`np.random.default_rng([seed, split_id, i, 3])`, so a build is
deterministic and independent of generation order.
"""

import dataclasses
import io

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

from ssljax.data import shapes_v1
from ssljax.data import shapes_v2

SUPERS = ("round", "angular")
FAMILIES = ("disk", "ellipse", "clover", "square", "triangle", "cross")
VARIANTS = (("plain", "top", "bottom", "both"),
            ("plain", "waist", "lemon", "flat"),
            ("three", "four", "five", "ring"),
            ("plain", "notch", "octagon", "bar"),
            ("plain", "truncated", "door", "dot"),
            ("plus", "tee", "up", "latin"))
FINE_NAMES = tuple(f"{f}_{v}" for f, vs in zip(FAMILIES, VARIANTS)
                   for v in vs)
NUM_FINE = len(FINE_NAMES)
NUM_COARSE = len(FAMILIES)
NUM_SUPER = len(SUPERS)
SPLIT_IDS = shapes_v1.SPLIT_IDS
LABEL_KEYS = ("label", "coarse_label", "super_label")
_V3_TAG = 3  # in the seed sequence: 3.0.0 never reuses 2.0.0's draws.
OUTLINE = 0.13  # half-thickness of the angular outlines, in units of r


def coarse_of(fine):
  """Family of a fine label; works on ints and arrays."""
  return fine // 4


def super_of(fine):
  """Super-family of a fine label; works on ints and arrays."""
  return coarse_of(fine) // (NUM_COARSE // NUM_SUPER)


# ----------------------------------------------------------------------------
# Signed distance functions in the shape's frame (pixels, r = size, v down:
# "top" is v < 0). Union = min, intersection = max, a minus b = max(a, -b).
# ----------------------------------------------------------------------------
_box = shapes_v1.box_sdf


def _disk(u, v, r):
  return np.hypot(u, v) - r


def _minus(a, b):
  return np.maximum(a, -b)


def _lobes(u, v, r, k, dist, radius):
  """k disks of radius `radius`·r on a circle of radius `dist`·r, the first
  at the top (k = 4: at the diagonals, so left and right match)."""
  start = -np.pi / 2 + (np.pi / 4 if k == 4 else 0.0)
  angles = start + 2 * np.pi * np.arange(k) / k
  return np.min([np.hypot(u - dist * r * np.cos(a), v - dist * r * np.sin(a))
                 for a in angles], axis=0) - radius * r


def _outline(d, r):
  w = OUTLINE * r
  return np.abs(d + w) - w


def _round(family, variant, u, v, r):
  """Solid curved shapes: disk, ellipse, clover."""
  if family == 0:
    d = _disk(u, v, r)
    bite = 0.38 * r
    if variant in (1, 3):  # a notch at the top
      d = _minus(d, _disk(u, v + r, bite))
    if variant in (2, 3):  # a notch at the bottom
      d = _minus(d, _disk(u, v - r, bite))
    return d
  if family == 1:
    if variant == 2:  # lemon: a lens with pointed ends, same extent
      return np.maximum(_disk(u, v - 0.78 * r, 1.40 * r),
                        _disk(u, v + 0.78 * r, 1.40 * r))
    d = (np.hypot(u / 1.15, v / 0.62) - r) * 0.62  # scaled disk: a bound
    if variant == 1:  # waist pinched from top and bottom
      d = _minus(d, _disk(u, np.abs(v) - 0.9 * r, 0.42 * r))
    if variant == 3:  # flattened top and bottom
      d = np.maximum(d, np.abs(v) - 0.44 * r)
    return d
  if variant == 3:  # three lobes around a hole
    return _minus(_lobes(u, v, r, 3, 0.45, 0.58), _disk(u, v, 0.25 * r))
  k, dist, radius = ((3, 0.45, 0.58), (4, 0.48, 0.52), (5, 0.46, 0.5))[variant]
  return _lobes(u, v, r, k, dist, radius)


def _angular(family, variant, u, v, r):
  """Outlined straight-edged shapes: square, triangle, cross."""
  if family == 3:
    s = 0.82 * r
    d = _box(u, v, s, s)
    if variant == 1:  # a notch in the top edge
      d = _minus(d, _box(u, v + s, 0.3 * r, 0.35 * r))
    if variant == 2:  # corners cut: an octagon
      d = np.maximum(d, np.abs(u) + np.abs(v) - 1.22 * r)
    d = _outline(d, r)
    if variant == 3:  # a bar across the middle
      d = np.minimum(d, _box(u, v, s, 0.08 * r))
    return d
  if family == 4:
    d = shapes_v1.triangle_sdf(u, v, 1.2 * r)
    if variant == 1:  # apex cut off
      d = np.maximum(d, -(v + 0.35 * r))
    if variant == 2:  # a door in the base
      d = _minus(d, _box(u, v - 0.6 * r, 0.28 * r, 0.3 * r))
    d = _outline(d, r)
    if variant == 3:  # a dot inside
      d = np.minimum(d, _disk(u, v - 0.1 * r, 0.22 * r))
    return d
  a, t = r, 0.38 * r  # arm half-length and half-width
  bar = _box(u, v, a, t)
  if variant == 0:  # plus
    d = np.minimum(bar, _box(u, v, t, a))
  elif variant == 1:  # tee: the top arm a stub
    d = np.minimum(bar, _box(u, v - 0.175 * a, t, 0.825 * a))
  elif variant == 2:  # up: the bottom arm a stub
    d = np.minimum(bar, _box(u, v + 0.175 * a, t, 0.825 * a))
  else:  # latin: the bar high on a longer stem
    d = np.minimum(_box(u, v + 0.35 * r, 0.85 * a, t), _box(u, v, t, 1.1 * a))
  return _outline(d, r)


def shape_sdf(fine, u, v, r):
  """SDF of fine class `fine` at shape-frame coordinates (u, v)."""
  family, variant = divmod(int(fine), 4)
  if family < 3:
    return _round(family, variant, u, v, r)
  return _angular(family, variant, u, v, r)


# ----------------------------------------------------------------------------
# Rendering.
# ----------------------------------------------------------------------------
def render(rng, fine, size):
  """Renders one uint8 (size, size, 3) image of class `fine`."""
  return shapes_v2.render_sdf(rng, lambda u, v, r: shape_sdf(fine, u, v, r),
                              size)


def example(seed, split, index, size):
  """The `index`-th example of `split` as (uint8 image, fine label)."""
  rng = np.random.default_rng([seed, SPLIT_IDS[split], index, _V3_TAG])
  fine = int(rng.integers(NUM_FINE))
  return render(rng, fine, size), fine


def generate(split, num, size=32, seed=0):
  """Numpy arrays (images n×H×W×3 uint8, fine n, coarse n, super n)."""
  images, labels = zip(*(example(seed, split, i, size) for i in range(num)))
  fine = np.asarray(labels, np.int64)
  return np.stack(images), fine, coarse_of(fine), super_of(fine)


def png_bytes(image):
  """PNG-encodes a uint8 image with PIL (TFDS would need TensorFlow for it)."""
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="PNG")
  return buf.getvalue()


# ----------------------------------------------------------------------------
# TFDS builder.
# ----------------------------------------------------------------------------
@dataclasses.dataclass
class HierarchicalShapesConfig(tfds.core.BuilderConfig):
  image_size: int = 32
  num_train: int = 10_000
  num_test: int = 2_000
  seed: int = 0


def _config(size, **kw):
  return HierarchicalShapesConfig(
      name=str(size), image_size=size,
      description=f"{size}x{size} px images.", **kw)


class HierarchicalShapes(tfds.core.GeneratorBasedBuilder):
  """Generated shapes with a 24-fine / 6-family / 2-super class tree."""

  VERSION = tfds.core.Version("3.0.0")
  RELEASE_NOTES = {
      "3.0.0": "Family-specific silhouette variants (no detail shared "
               "across families); super-family = solid curved vs outlined "
               "edged: the tree follows visual similarity.",
      "2.0.0": "Three-level tree (24 fine / 6 families / 2 super-families), "
               "large objects, illumination/tint nuisance without a shared "
               "per-image texture; now generated as `hierarchical_shapes_v2`.",
      "1.0.0": "20 fine / 4 coarse classes on textured backgrounds; now "
               "generated as `hierarchical_shapes_v1`.",
  }
  BUILDER_CONFIGS = [
      _config(32), _config(64), _config(224),
      HierarchicalShapesConfig(
          name="32_small", image_size=32, num_train=1000, num_test=200,
          description="32 px, 1k/200 examples: for tests and smoke runs."),
      HierarchicalShapesConfig(
          name="224_small", image_size=224, num_train=1000, num_test=200,
          description="224 px, 1k/200 examples: for benchmarks."),
  ]
  # The version's generator: (example function, fine names, family names,
  # super-family names or None when the version has no super level).
  _generator = (example, FINE_NAMES, FAMILIES, SUPERS)

  def __init__(self, **kwargs):
    # array_record is what `tfds.data_source` reads (random access, no TF).
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  def _info(self):
    size = self.builder_config.image_size
    _, fine, families, supers = self._generator
    features = {"label": tfds.features.ClassLabel(names=fine),
                "coarse_label": tfds.features.ClassLabel(names=families)}
    if supers:
      features["super_label"] = tfds.features.ClassLabel(names=supers)
    return tfds.core.DatasetInfo(
        builder=self,
        description=self.__doc__ if type(self) is not HierarchicalShapes
        else __doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(size, size, 3)), **features}),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated: nothing to download.
    cfg = self.builder_config
    return {"train": self._generate_examples("train", cfg.num_train),
            "test": self._generate_examples("test", cfg.num_test)}

  def _generate_examples(self, split, num):
    cfg = self.builder_config
    make, fine_names, families, supers = self._generator
    per_family = len(fine_names) // len(families)
    for i in range(num):
      image, fine = make(cfg.seed, split, i, cfg.image_size)
      labels = {"coarse_label": fine // per_family}
      if supers:
        labels["super_label"] = fine // per_family // (
            len(families) // len(supers))
      yield i, {"image": png_bytes(image), "label": fine, **labels}


class HierarchicalShapesV2(HierarchicalShapes):
  """Version 2.0.0 of `hierarchical_shapes` (24 / 6 / 2, the 4 details
  shared by every family), unchanged: `ssljax.data.shapes_v2`.

  TFDS generates only a builder's current version, so the old generator is
  its own builder. Its examples are those of `hierarchical_shapes:2.0.0`,
  image for image and label for label; only the record order differs (TFDS
  shuffles records by a key that includes the builder name). Folders
  prepared before 3.0.0 still open as `hierarchical_shapes/32:2.0.0`.
  """

  VERSION = tfds.core.Version("2.0.0")
  RELEASE_NOTES = {"2.0.0": "Generator of hierarchical_shapes 2.0.0."}
  _generator = (shapes_v2.example, shapes_v2.FINE_NAMES, shapes_v2.FAMILIES,
                shapes_v2.SUPERS)


class HierarchicalShapesV1(HierarchicalShapes):
  """Version 1.0.0 of `hierarchical_shapes` (20 fine / 4 coarse), unchanged:
  `ssljax.data.shapes_v1`. Its examples are those of
  `hierarchical_shapes:1.0.0`; folders prepared before 2.0.0 still open as
  `hierarchical_shapes/32:1.0.0`.
  """

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Generator of hierarchical_shapes 1.0.0."}
  _generator = (shapes_v1.example, shapes_v1.FINE_NAMES, shapes_v1.FAMILIES,
                None)
