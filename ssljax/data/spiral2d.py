"""`spiral2d`: noisy points on a 2-D spiral, generated offline, each stored
as a 1×1-pixel image.

Points: θ ~ U[θ_min, θ_max] = U[π, 4π]; the clean curve is the Archimedean
spiral c(θ) = (0.5, 0.5) + r(θ)·(cos θ, sin θ), r(θ) = R·θ/θ_max, R = 0.4,
in the unit square (1.5 turns, radius 0.1 to 0.4, successive arms 0.2
apart); a point is c(θ) + ε, ε ~ N(0, NOISE² I), NOISE = 0.01.
Labels: the quarter of [θ_min, θ_max] that θ falls in (4 classes), for the
probes. Splits: train 2,000, test 1,000 points; point i of a split comes
from `np.random.default_rng([SEED, split_id, i])`, so a build is
deterministic. `curve(theta)` gives clean curve points and unit normals
(the experiment measures the energy at fixed distances off the curve).

Why a 1×1 image instead of an array source: everything in ssljax (TFDS
random access, the grain crops, on-device normalization, the evaluators)
takes uint8 images. A point (u, v) ∈ [0, 1]² stored as the pixel (R, G, B)
= round(255·(u, v, 0)) runs through all of it unchanged, so `ssljax-train`
trains and evaluates 2-D models like any other dataset; crops and flips of
one pixel are the identity. The price is a 1/255 lattice: quantization
error of std 1/(255·√12) ≈ 0.0011 per coordinate, a ninth of NOISE. Methods
read the first two channels (`rdae.channels = 2`); blue is always 0.
"""

import numpy as np
import tensorflow_datasets as tfds

from ssljax.data.hierarchical_shapes import png_bytes

THETA_MIN, THETA_MAX = np.pi, 4 * np.pi
RADIUS = 0.4
NOISE = 0.01
SEED = 0
SIZES = {"train": 2000, "test": 1000}
SPLIT_IDS = {"train": 0, "test": 1}
NUM_CLASSES = 4


def curve(theta):
  """(points [n, 2], unit normals [n, 2]) of the clean spiral at `theta`,
  in the unit square (pixel value / 255); the normals point outwards (away
  from the centre)."""
  theta = np.asarray(theta, np.float64)
  r = RADIUS * theta / THETA_MAX
  direction = np.stack([np.cos(theta), np.sin(theta)], -1)
  points = 0.5 + r[:, None] * direction
  # c'(θ) = r'·(cos, sin) + r·(−sin, cos); the normal is c' turned by 90°.
  tangent = (RADIUS / THETA_MAX) * direction + r[:, None] * np.stack(
      [-np.sin(theta), np.cos(theta)], -1)
  normal = np.stack([tangent[:, 1], -tangent[:, 0]], -1)
  return points, normal / np.linalg.norm(normal, axis=-1, keepdims=True)


def sample(split, i):
  """(uint8 image [1, 1, 3], label, θ) of point i of `split`."""
  rng = np.random.default_rng([SEED, SPLIT_IDS[split], i])
  theta = rng.uniform(THETA_MIN, THETA_MAX)
  point = curve([theta])[0][0] + NOISE * rng.normal(size=2)
  rgb = np.round(255 * np.clip([point[0], point[1], 0.0], 0, 1))
  label = min(int((theta - THETA_MIN) / (THETA_MAX - THETA_MIN) * 4), 3)
  return rgb.astype(np.uint8).reshape(1, 1, 3), label, theta


def to_points(images):
  """uint8 images [n, 1, 1, 3] -> points [n, 2] in the unit square."""
  return np.asarray(images, np.float64)[:, 0, 0, :2] / 255.0


class Spiral2d(tfds.core.GeneratorBasedBuilder):
  """Noisy 2-D spiral points as 1×1 RGB images (x, y, 0): 2,000 / 1,000."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(1, 1, 3)),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated: nothing to download.
    return {split: self._generate_examples(split) for split in SIZES}

  def _generate_examples(self, split):
    for i in range(SIZES[split]):
      image, label, _ = sample(split, i)
      yield i, {"image": png_bytes(image), "label": label}
