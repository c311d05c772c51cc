"""RandAugment and random erasing in jnp, as timm applies them for MAE / DeiT
fine-tuning (`rand-m9-mstd0.5-inc1`, `RandomErasing(0.25, mode="pixel")`).

No maintained TF-free JAX or NumPy library on PyPI implements these (augmax
and dm-pix have neither RandAugment's 15 operations nor erasing), so they
are written here, on-device like ssljax's other augmentations, and tested
against PIL's ImageOps / ImageEnhance (tests/data/test_randaugment.py).

RandAugment (timm `RandAugment`, increasing variant): `num_layers` draws of
one of the 15 operations below, uniformly with replacement; each applied
with probability `prob`, at magnitude m ~ N(magnitude, magnitude_std)
clipped to [0, 10] (drawn per application), every signed argument negated
with probability 1/2. Levels (m / 10 = t):
  AutoContrast, Equalize, Invert   no argument
  Rotate          ±30·t degrees about the centre
  Posterize       keep 4 − int(4t) bits
  Solarize        invert pixels ≥ 256 − int(256t)
  SolarizeAdd     add int(110t) to pixels < 128
  Color, Contrast, Brightness, Sharpness   PIL ImageEnhance factor 1 ± 0.9t
  ShearX, ShearY  ±0.3t
  TranslateXRel, TranslateYRel  ±0.45t of the side
Pixel values follow PIL's uint8 arithmetic (levels 0..255, results
rounded). Geometric operations fill with timm's ImageNet mean (124, 116,
104) and sample bilinearly, where timm's fine-tuning transform samples
bicubically (`interpolation=bicubic`): ssljax's one departure.

Random erasing (timm `RandomErasing`, mode "pixel", one box): with
probability p, up to 10 tries of an area fraction ~ U[0.02, 1/3] and a
log-uniform aspect in [0.3, 1/0.3]; the first box that fits is filled with
N(0, 1) noise per pixel and channel. It runs after normalization, as timm's.
"""

import jax
import jax.numpy as jnp

FILL = (124, 116, 104)  # timm's _FILL: ImageNet mean in 0..255
_LUMA = (0.299, 0.587, 0.114)  # PIL's "L" conversion (augment.py imports us)


def _blend(degenerate, v, factor):
  """PIL ImageEnhance: degenerate + factor·(image − degenerate), uint8.
  PIL's Image.blend converts the float result to uint8 by truncation (and
  clips when extrapolating), not by rounding."""
  return jnp.clip(jnp.trunc(degenerate + factor * (v - degenerate)), 0, 255)


def _gray(v):
  return jnp.round(v @ jnp.asarray(_LUMA, v.dtype))


def autocontrast(v, _):
  lo = v.min(axis=(0, 1))
  hi = v.max(axis=(0, 1))
  scale = 255.0 / jnp.maximum(hi - lo, 1.0)
  return jnp.where(hi > lo, jnp.clip(jnp.floor((v - lo) * scale), 0, 255), v)


def _equalize_channel(c):
  hist = jnp.bincount(c.reshape(-1).astype(jnp.int32), length=256)
  last = hist[c.max().astype(jnp.int32)]
  step = (c.size - last) // 255
  lut = (step // 2 + jnp.cumsum(hist) - hist) // jnp.maximum(step, 1)
  lut = jnp.minimum(lut, 255).astype(c.dtype)
  return jnp.where(step > 0, lut[c.astype(jnp.int32)], c)


def equalize(v, _):
  return jnp.stack([_equalize_channel(v[..., i]) for i in range(3)], -1)


def invert(v, _):
  return 255.0 - v


def posterize(v, t):
  shift = 2.0 ** (8 - (4 - jnp.floor(4 * t)))
  return jnp.floor(v / shift) * shift


def solarize(v, t):
  return jnp.where(v >= 256 - jnp.floor(256 * t), 255.0 - v, v)


def solarize_add(v, t):
  return jnp.where(v < 128, jnp.minimum(v + jnp.floor(110 * t), 255.0), v)


def color(v, f):
  return _blend(_gray(v)[..., None], v, f)


def contrast(v, f):
  return _blend(jnp.floor(_gray(v).mean() + 0.5), v, f)


def brightness(v, f):
  return _blend(0.0, v, f)


def sharpness(v, f):
  """PIL's SMOOTH filter ([1 1 1; 1 5 1; 1 1 1] / 13) on the interior; the
  one-pixel border keeps its values."""
  k = jnp.asarray([[1, 1, 1], [1, 5, 1], [1, 1, 1]], v.dtype) / 13
  smooth = jax.vmap(lambda c: jax.scipy.signal.convolve2d(c, k, mode="same"),
                    in_axes=-1, out_axes=-1)(v)
  h, w = v.shape[:2]
  inner = ((jnp.arange(h)[:, None] > 0) & (jnp.arange(h)[:, None] < h - 1)
           & (jnp.arange(w)[None] > 0) & (jnp.arange(w)[None] < w - 1))
  degenerate = jnp.where(inner[..., None], jnp.round(smooth), v)
  return _blend(degenerate, v, f)


def affine(v, matrix):
  """Output pixel (x, y) takes input (a·x + b·y + c, d·x + e·y + f), PIL's
  `Image.transform(AFFINE)` convention on pixel centres; bilinear; outside
  the image: FILL."""
  h, w = v.shape[:2]
  a, b, c, d, e, f = matrix
  y, x = jnp.meshgrid(jnp.arange(h, dtype=v.dtype) + 0.5,
                      jnp.arange(w, dtype=v.dtype) + 0.5, indexing="ij")
  sx = a * x + b * y + c - 0.5
  sy = d * x + e * y + f - 0.5
  inside = (sx > -0.5) & (sx < w - 0.5) & (sy > -0.5) & (sy < h - 0.5)
  out = jnp.stack([jax.scipy.ndimage.map_coordinates(
      v[..., i], [sy, sx], order=1, mode="nearest") for i in range(3)], -1)
  return jnp.where(inside[..., None], jnp.round(out),
                   jnp.asarray(FILL, v.dtype))


def rotate(v, degrees):
  """Counter-clockwise about the image centre, as PIL's `rotate`."""
  h, w = v.shape[:2]
  r = jnp.deg2rad(degrees)
  cos, sin = jnp.cos(r), jnp.sin(r)
  cx, cy = w / 2, h / 2
  return affine(v, (cos, -sin, cx - cos * cx + sin * cy,
                    sin, cos, cy - sin * cx - cos * cy))


def shear_x(v, s):
  return affine(v, (1.0, s, 0.0, 0.0, 1.0, 0.0))


def shear_y(v, s):
  return affine(v, (1.0, 0.0, 0.0, s, 1.0, 0.0))


def translate_x(v, frac):
  return affine(v, (1.0, 0.0, frac * v.shape[1], 0.0, 1.0, 0.0))


def translate_y(v, frac):
  return affine(v, (1.0, 0.0, 0.0, 0.0, 1.0, frac * v.shape[0]))


# name -> (op(v, argument), argument from (t = magnitude / 10, sign)).
_ENHANCE = lambda t, s: 1.0 + s * 0.9 * t
OPS = (
    ("AutoContrast", autocontrast, lambda t, s: 0.0),
    ("Equalize", equalize, lambda t, s: 0.0),
    ("Invert", invert, lambda t, s: 0.0),
    ("Rotate", rotate, lambda t, s: s * 30.0 * t),
    ("PosterizeIncreasing", posterize, lambda t, s: t),
    ("SolarizeIncreasing", solarize, lambda t, s: t),
    ("SolarizeAdd", solarize_add, lambda t, s: t),
    ("ColorIncreasing", color, _ENHANCE),
    ("ContrastIncreasing", contrast, _ENHANCE),
    ("BrightnessIncreasing", brightness, _ENHANCE),
    ("SharpnessIncreasing", sharpness, _ENHANCE),
    ("ShearX", shear_x, lambda t, s: s * 0.3 * t),
    ("ShearY", shear_y, lambda t, s: s * 0.3 * t),
    ("TranslateXRel", translate_x, lambda t, s: s * 0.45 * t),
    ("TranslateYRel", translate_y, lambda t, s: s * 0.45 * t),
)


def apply_op(index, v, magnitude, sign):
  """Operation `index` of OPS on levels v [H, W, 3] (float, 0..255)."""
  t = magnitude / 10.0
  branches = [lambda v, op=op, arg=arg: op(v, arg(t, sign))
              for _, op, arg in OPS]
  return jax.lax.switch(index, branches, v)


def rand_augment(key, x, num_layers=2, magnitude=9.0, magnitude_std=0.5,
                 prob=0.5):
  """x: float [H, W, 3] in [0, 1] -> RandAugment'ed, same range."""
  v = jnp.round(x * 255.0)
  for k in jax.random.split(key, num_layers):
    k_op, k_apply, k_mag, k_sign = jax.random.split(k, 4)
    index = jax.random.randint(k_op, (), 0, len(OPS))
    m = jnp.clip(magnitude + magnitude_std * jax.random.normal(k_mag),
                 0.0, 10.0)
    sign = jnp.where(jax.random.bernoulli(k_sign), 1.0, -1.0)
    v = jnp.where(jax.random.uniform(k_apply) < prob,
                  apply_op(index, v, m, sign), v)
  return v / 255.0


def erase_box(key, h, w, min_area=0.02, max_area=1 / 3, min_aspect=0.3,
              attempts=10):
  """(found, top, left, box_h, box_w) of timm's first fitting try."""
  k_area, k_aspect, k_top, k_left = jax.random.split(key, 4)
  area = h * w * jax.random.uniform(k_area, (attempts,), minval=min_area,
                                    maxval=max_area)
  log_r = jnp.log(min_aspect)
  aspect = jnp.exp(jax.random.uniform(k_aspect, (attempts,), minval=log_r,
                                      maxval=-log_r))
  bh = jnp.round(jnp.sqrt(area * aspect)).astype(jnp.int32)
  bw = jnp.round(jnp.sqrt(area / aspect)).astype(jnp.int32)
  fits = (bh < h) & (bw < w)
  i = jnp.argmax(fits)
  top = jax.random.randint(k_top, (), 0, h - bh[i] + 1)
  left = jax.random.randint(k_left, (), 0, w - bw[i] + 1)
  return fits.any(), top, left, bh[i], bw[i]


def random_erase(key, x, prob):
  """x: normalized [H, W, C]; with probability `prob` one box of N(0, 1)."""
  k_apply, k_box, k_noise = jax.random.split(key, 3)
  h, w = x.shape[:2]
  found, top, left, bh, bw = erase_box(k_box, h, w)
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None]
  box = ((rows >= top) & (rows < top + bh) & (cols >= left)
         & (cols < left + bw))
  box &= found & (jax.random.uniform(k_apply) < prob)
  noise = jax.random.normal(k_noise, x.shape, x.dtype)
  return jnp.where(box[..., None], noise, x)
