"""`hierarchical_shapes` version 1.0.0: 4 shape families x 5 details.

Kept so that results measured on 1.0.0 stay reproducible: TFDS builder
`hierarchical_shapes_v1`. Version 2.0.0 replaced it because SSL does not
learn it at CPU budget (see the `hierarchical_shapes` release notes).

Coarse class = shape family (disk, square, triangle, cross); fine class = the
detail inside the family (solid, outline, outline+dot, striped, half):
`coarse = fine // 5`. The class lives in a shape covering ~10-30% of the
image, the fine class in 1-3 px strokes; background brightness, tint, a
smooth random texture, pixel noise, and the shape's pose and colour are drawn
independently of the class. Example `i` of a split is drawn from
`np.random.default_rng([seed, split_id, i])`.
"""

import numpy as np

FAMILIES = ("disk", "square", "triangle", "cross")
DETAILS = ("solid", "outline", "dot", "striped", "half")
FINE_NAMES = tuple(f"{f}_{d}" for f in FAMILIES for d in DETAILS)
NUM_FINE = len(FINE_NAMES)
NUM_COARSE = len(FAMILIES)
SPLIT_IDS = {"train": 0, "test": 1}


def coarse_of(fine):
  """Coarse label (shape family) of a fine label; works on ints and arrays."""
  return fine // len(DETAILS)


def box_sdf(u, v, a, b):
  """Exact SDF of an axis-aligned box with half sides a, b."""
  qx, qy = np.abs(u) - a, np.abs(v) - b
  outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
  return outside + np.minimum(np.maximum(qx, qy), 0)


def triangle_sdf(u, v, r):
  """Equilateral triangle with circumradius r, apex up (exact SDF)."""
  k = np.sqrt(3.0)
  a = r * k / 2  # half side
  v = -v + r / 4  # centroid-centred, apex at +v
  u = np.abs(u) - a
  v = v + a / k
  flip = u + k * v > 0
  u, v = np.where(flip, (u - k * v) / 2, u), np.where(flip, (-k * u - v) / 2, v)
  u = u - np.clip(u, -2 * a, 0)
  return -np.hypot(u, v) * np.sign(v)


def _family_sdf(family, u, v, r):
  if family == 0:
    return np.hypot(u, v) - r
  if family == 1:
    return box_sdf(u, v, 0.8 * r, 0.8 * r)
  if family == 2:
    return triangle_sdf(u, v, 1.15 * r)
  return np.minimum(box_sdf(u, v, r, 0.36 * r), box_sdf(u, v, 0.36 * r, r))


def shape_sdf(fine, u, v, r):
  """SDF of fine class `fine` at shape-frame coordinates (u, v)."""
  family, detail = divmod(int(fine), len(DETAILS))
  d = _family_sdf(family, u, v, r)
  w = max(0.14 * r, 0.7)  # half outline thickness: at least ~1.4 px
  if detail == 1:  # outline
    d = np.abs(d + w) - w
  elif detail == 2:  # outline + centre dot
    d = np.minimum(np.abs(d + w) - w, np.hypot(u, v) - 0.3 * r)
  elif detail == 3:  # stripes across the shape
    period = 0.7 * r
    stripes = np.abs(np.mod(v, period) - period / 2) - 0.19 * r
    d = np.maximum(d, stripes)
  elif detail == 4:  # half
    d = np.maximum(d, u)
  return d


# ----------------------------------------------------------------------------
# Rendering.
# ----------------------------------------------------------------------------
def smooth_noise(rng, size, sigma, std):
  """Stationary Gaussian noise, Gaussian-blurred (σ px) via FFT, given std."""
  white = rng.normal(size=(size, size))
  f = np.fft.fftfreq(size)
  gain = np.exp(-2 * (np.pi * sigma) ** 2 * (f[:, None] ** 2 + f[None] ** 2))
  field = np.real(np.fft.ifft2(np.fft.fft2(white) * gain))
  return (field * (std / (field.std() + 1e-8))).astype(np.float32)


def render(rng, fine, size):
  """Renders one uint8 (size, size, 3) image of class `fine`."""
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
  s = size / 32.0  # nuisance parameters are defined at 32 px and scaled.

  # Background: brightness + smooth isotropic noise, tinted. The texture has
  # one fixed spectrum for all images, so two crops of an image share no
  # texture statistic beyond brightness and tint (no shortcut for SSL).
  bg = rng.uniform(0.25, 0.75) + smooth_noise(rng, size, 3.0 * s, 0.15)
  tint = rng.uniform(0.6, 1.4, size=3).astype(np.float32)
  img = bg[..., None] * tint

  # Shape: pose and colour independent of the class.
  r = rng.uniform(6.5, 10.0) * s
  cx, cy = rng.uniform(r + 1, size - r - 1, size=2)
  rot = rng.uniform(0, 2 * np.pi)
  dx, dy = xx - cx, yy - cy
  u = np.cos(rot) * dx + np.sin(rot) * dy
  v = -np.sin(rot) * dx + np.cos(rot) * dy
  cover = np.clip(0.5 - shape_sdf(fine, u, v, r), 0.0, 1.0)[..., None]
  base = img[int(cy), int(cx)]
  sign = rng.choice([-1.0, 1.0])
  colour = base + sign * rng.uniform(0.2, 0.4) * rng.uniform(0.6, 1.4, 3)
  img = img * (1 - cover) + colour.astype(np.float32) * cover

  img += rng.normal(0, 0.02, img.shape).astype(np.float32)
  return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def example(seed, split, index, size):
  """The `index`-th example of `split` as (uint8 image, fine label)."""
  rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
  fine = int(rng.integers(NUM_FINE))
  return render(rng, fine, size), fine


def generate(split, num, size=32, seed=0):
  """Numpy arrays (images n×H×W×3 uint8, fine n, coarse n) without TFDS."""
  images, labels = zip(*(example(seed, split, i, size) for i in range(num)))
  fine = np.asarray(labels, np.int64)
  return np.stack(images), fine, coarse_of(fine)


