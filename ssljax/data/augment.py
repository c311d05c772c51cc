"""On-device image augmentation: pure jnp, jit-able, one PRNG key per example.

Runs inside the jitted train step on uint8 crops from the host pipeline.
Each image's random parameters are drawn first (`draw`: what torchvision's
`get_params` return) and applied second (`apply`), so the parity tests feed
the official ops the same draws. Two families of ops, chosen per view:

  color="torchvision" (VICReg, Barlow Twins, MVEB, SwAV, DINO, solo-learn's
    NNCLR: torchvision's transforms on PIL images): colour jitter (w.p.
    p_jitter) in a random order; factors b, c, s ~ U[max(0, 1-B), 1+B], hue
    shift h ~ U[-H, H] turns. brightness clip(b·x); contrast clip(c·x +
    (1-c)·mean(gray(x))); saturation clip(s·x + (1-s)·gray(x)); hue rotates
    H in HSV. Grayscale is PIL's "L" (0.299, 0.587, 0.114).
  color="tf" (BYOL's JAX ops and SimCLR's tf.image ops): brightness x + δ,
    δ ~ U[-B, B] (`additive_brightness`, BYOL and SimCLR v1) or b·x (SimCLR
    v2); contrast per channel around that channel's spatial mean; saturation
    scales S in HSV; every op clipped to [0, 1]; grayscale (0.2989, 0.587,
    0.114), tf.image.rgb_to_grayscale's.
  blur="pil" (w.p. p_blur; σ ~ U[blur_sigma] px): PIL's GaussianBlur(σ),
    three extended-box passes per axis (Gwosdek et al. 2011) with the edge
    pixel repeated, as PIL computes it (tests/data/test_augment_parity.py).
  blur="tf": a Gaussian of 2·⌊side/20⌋ + 1 taps (23 at 224 px), zero
    padding (BYOL's and SimCLR's SAME convolution); `blur_sigma_shared`
    draws one σ for the view's whole batch (SimCLR: per replica batch).
  solarize (w.p. p_solarize): x ← 1 - x where x ≥ solarize_threshold
    (PIL's 128/255; BYOL's 0.5).
  normalize: (x - mean) / std per channel.
  RandAugment (ra_layers > 0, first) and random erasing (w.p. p_erase,
  after normalize): timm's, in ssljax.data.randaugment (MAE fine-tuning).

Order: jitter, grayscale, blur, solarize (all recipes; flips happen on the
host and commute with these ops). The recipes name the official pipeline
they follow: `RECIPES["vicreg"]` = torchvision ops, blur 1.0 / 0.1 and
solarize 0 / 0.2 on the two global views, blur 0.5 on local crops.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ssljax.data import randaugment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)  # a tuple: no device array at import time
_LUMA_TF = (0.2989, 0.587, 0.114)  # tf.image.rgb_to_grayscale's
COLORS = ("torchvision", "tf")
BLURS = ("pil", "tf")


@dataclasses.dataclass(frozen=True)
class ViewAugment:
  """Augmentation of one view. Defaults: torchvision's colour jitter of
  BYOL's strengths, no blur (PIL's when p_blur > 0)."""
  p_jitter: float = 0.8
  brightness: float = 0.4
  contrast: float = 0.4
  saturation: float = 0.2
  hue: float = 0.1
  p_gray: float = 0.2
  p_blur: float = 0.0
  blur_sigma: tuple[float, float] = (0.1, 2.0)
  p_solarize: float = 0.0
  ra_layers: int = 0
  ra_magnitude: float = 9.0
  ra_magnitude_std: float = 0.5
  p_erase: float = 0.0
  color: str = "torchvision"
  additive_brightness: bool = False
  blur: str = "pil"
  blur_sigma_shared: bool = False
  solarize_threshold: float = 128 / 255

  def __post_init__(self):
    if self.color not in COLORS or self.blur not in BLURS:
      raise ValueError(f"ViewAugment(color={self.color!r}, blur="
                       f"{self.blur!r}): valid colors {COLORS}, blurs "
                       f"{BLURS}.")


NONE = ViewAugment(p_jitter=0.0, p_gray=0.0)
# torchvision on PIL images: VICReg, Barlow Twins, MVEB, DINO, solo-learn.
_TORCHVISION = (ViewAugment(p_blur=1.0),
                ViewAugment(p_blur=0.1, p_solarize=0.2),
                ViewAugment(p_blur=0.5))
# deepmind-research/byol utils/augmentations.py (JAX, TF's formulas); its
# local-crop spec (blur 0.5) is ours: BYOL has no local crops.
_BYOL_TF = dict(color="tf", additive_brightness=True, blur="tf",
                solarize_threshold=0.5)
_BYOL = (ViewAugment(p_blur=1.0, **_BYOL_TF),
         ViewAugment(p_blur=0.1, p_solarize=0.2, **_BYOL_TF),
         ViewAugment(p_blur=0.5, **_BYOL_TF))
# google-research/simclr tf2/data_util.py (strength 1, impl simclrv2):
# blur in the model, one σ per batch, on either view w.p. 0.5.
_SIMCLR = (ViewAugment(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
                       p_blur=0.5, color="tf", blur="tf",
                       blur_sigma_shared=True),) * 3
# facebookresearch/swav main_swav.py: colour distortion s = 1 and PIL blur
# 0.5 on every crop, no solarize.
_SWAV = (ViewAugment(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
                     p_blur=0.5),) * 3
# 32 px recipes (solo-learn CIFAR): no blur, solarize only on view 2.
_CIFAR = (ViewAugment(), ViewAugment(p_solarize=0.2), ViewAugment())
# MAE / DeiT fine-tuning: timm's rand-m9-mstd0.5-inc1 + erasing 0.25.
_RANDAUG = (ViewAugment(p_jitter=0.0, p_gray=0.0, ra_layers=2,
                        p_erase=0.25),) * 3
RECIPES = {"byol": _BYOL, "vicreg": _TORCHVISION, "mveb": _TORCHVISION,
           "barlow_twins": _TORCHVISION, "dino": _TORCHVISION,
           "nnclr": _TORCHVISION, "simclr": _SIMCLR, "swav": _SWAV,
           "cifar": _CIFAR, "randaugment": _RANDAUG, "none": (NONE,) * 3}


def view_specs(recipe, num_global=2, num_local=0):
  """Per-view specs: global views 1 and 2 from the recipe, then local views."""
  if recipe not in RECIPES:
    raise ValueError(f"Unknown augmentation recipe {recipe!r}; valid: "
                     f"{', '.join(sorted(RECIPES))}.")
  first, second, local = RECIPES[recipe]
  glob = [first if v % 2 == 0 else second for v in range(num_global)]
  return tuple(glob) + (local,) * num_local


# ----------------------------------------------------------------------------
# Single-image ops on float [H, W, 3] in [0, 1].
# ----------------------------------------------------------------------------
def grayscale(x, luma=_LUMA):
  gray = x @ jnp.asarray(luma, x.dtype)
  return jnp.broadcast_to(gray[..., None], x.shape)


def _blend(x, other, factor):
  return jnp.clip(factor * x + (1 - factor) * other, 0.0, 1.0)


def rgb_to_hsv(x):
  r, g, b = x[..., 0], x[..., 1], x[..., 2]
  maxc, minc = x.max(-1), x.min(-1)
  delta = maxc - minc
  safe = jnp.where(delta > 0, delta, 1.0)
  s = jnp.where(maxc > 0, delta / jnp.where(maxc > 0, maxc, 1.0), 0.0)
  rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
  h = jnp.where(maxc == r, bc - gc,
                jnp.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
  h = jnp.where(delta > 0, (h / 6.0) % 1.0, 0.0)
  return jnp.stack([h, s, maxc], -1)


def hsv_to_rgb(x):
  h, s, v = x[..., 0], x[..., 1], x[..., 2]
  i = jnp.floor(h * 6.0)
  f = h * 6.0 - i
  p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
  i = i.astype(jnp.int32) % 6
  r = jnp.choose(i, [v, q, p, p, t, v], mode="clip")
  g = jnp.choose(i, [t, v, v, q, p, p], mode="clip")
  b = jnp.choose(i, [p, p, t, v, v, q], mode="clip")
  return jnp.stack([r, g, b], -1)


def adjust_hue(x, shift):
  hsv = rgb_to_hsv(x)
  hsv = hsv.at[..., 0].set((hsv[..., 0] + shift) % 1.0)
  return hsv_to_rgb(hsv)


def _scale_saturation(x, factor):
  hsv = rgb_to_hsv(x)
  hsv = hsv.at[..., 1].set(jnp.clip(hsv[..., 1] * factor, 0.0, 1.0))
  return hsv_to_rgb(hsv)


def _jitter_ops(p, spec):
  """The four colour ops with this image's factors, in torchvision's
  numbering (brightness, contrast, saturation, hue)."""
  b, c, s, h = p["brightness"], p["contrast"], p["saturation"], p["hue"]
  clip = lambda y: jnp.clip(y, 0.0, 1.0)
  if spec.color == "tf":
    return [
        lambda y: clip(y + b if spec.additive_brightness else y * b),
        lambda y: clip((y - y.mean((0, 1))) * c + y.mean((0, 1))),
        lambda y: clip(_scale_saturation(y, s)),
        lambda y: clip(adjust_hue(y, h)),
    ]
  return [
      lambda y: clip(b * y),
      lambda y: _blend(y, jnp.mean(y @ jnp.asarray(_LUMA, y.dtype)), c),
      lambda y: _blend(y, grayscale(y), s),
      lambda y: adjust_hue(y, h),
  ]


def color_jitter(x, p, spec):
  """The colour ops applied in the drawn order `p["order"]` (a permutation
  of 0..3, torchvision's fn_idx)."""
  ops = _jitter_ops(p, spec)
  return jax.lax.fori_loop(
      0, 4, lambda i, y: jax.lax.switch(p["order"][i], ops, y), x)


def blur_kernel_size(side):
  """Taps of the "tf" blur: BYOL's radius int(side / 10 / 2) (SimCLR's
  (side // 10) // 2 is the same)."""
  return 2 * int(side / 20) + 1


def gaussian_blur(x, sigma):
  """BYOL's / SimCLR's blur: separable Gaussian, 2·⌊side/20⌋ + 1 taps,
  zero padding."""
  r = blur_kernel_size(x.shape[0]) // 2
  offsets = jnp.arange(-r, r + 1, dtype=x.dtype)
  w = jnp.exp(-0.5 * (offsets / sigma) ** 2)
  w = w / w.sum()
  return _separable(_separable(x, w, 0, "constant"), w, 1, "constant")


def _separable(x, w, axis, mode):
  """Σ_j w[j]·x[i + j − r] along `axis`, padded with `mode`."""
  r, n = len(w) // 2, x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (r, r)
  p = jnp.pad(x, pad, mode=mode)
  return sum(w[j] * jax.lax.slice_in_dim(p, j, j + n, axis=axis)
             for j in range(len(w)))


def pil_box_radius(sigma, passes=3, xp=jnp):
  """PIL's _gaussian_blur_radius: the (fractional) box radius l + a whose
  `passes` box blurs have the variance σ² (Gwosdek et al. 2011, eqs. 7-14)."""
  s2 = sigma * sigma / passes
  l = xp.floor((xp.sqrt(12.0 * s2 + 1.0) - 1.0) / 2.0)
  a = (2 * l + 1) * (l * (l + 1) - 3 * s2) / (6 * (s2 - (l + 1) ** 2))
  return l, a


def pil_gaussian_blur(x, sigma, max_sigma=2.0, passes=3):
  """PIL's ImageFilter.GaussianBlur(radius=σ) in float: `passes` extended
  box blurs along the width, then along the height, each box 2l+1 taps of
  weight 1 and two end taps of weight a, over (2l + 1 + 2a), the edge pixel
  repeated. PIL rounds to uint8 after each pass; this does not (≤ 3 levels
  apart, tests/data/test_augment_parity.py). `max_sigma` bounds the taps."""
  l, a = pil_box_radius(sigma, passes)
  m = int(pil_box_radius(float(max_sigma), passes, np)[0]) + 1
  offsets = jnp.abs(jnp.arange(-m, m + 1))
  w = jnp.where(offsets <= l, 1.0, jnp.where(offsets == l + 1, a, 0.0))
  w = (w / (2 * l + 1 + 2 * a)).astype(x.dtype)
  for axis in (1, 0):
    for _ in range(passes):
      x = _separable(x, w, axis, "edge")
  return x


def solarize(x, threshold=128 / 255):
  return jnp.where(x >= threshold, 1.0 - x, x)


def draw(key, spec):
  """One image's random parameters: whether each op applies, the jitter's
  order and factors, the blur's σ."""
  k_jit, k_sigma, k_p = jax.random.split(key, 3)
  u = jax.random.uniform(k_p, (4,))
  k_order, kb, kc, ks, kh = jax.random.split(k_jit, 5)

  def factor(k, strength):
    return jax.random.uniform(k, (), minval=max(0.0, 1 - strength),
                              maxval=1 + strength)

  if spec.additive_brightness:
    brightness = jax.random.uniform(kb, (), minval=-spec.brightness,
                                    maxval=spec.brightness)
  else:
    brightness = factor(kb, spec.brightness)
  return dict(
      jitter=u[0] < spec.p_jitter, gray=u[1] < spec.p_gray,
      blur=u[2] < spec.p_blur, solarize=u[3] < spec.p_solarize,
      order=jax.random.permutation(k_order, 4), brightness=brightness,
      contrast=factor(kc, spec.contrast),
      saturation=factor(ks, spec.saturation),
      hue=jax.random.uniform(kh, (), minval=-spec.hue, maxval=spec.hue),
      sigma=jax.random.uniform(k_sigma, (), minval=spec.blur_sigma[0],
                               maxval=spec.blur_sigma[1]))


def apply(x, p, spec):
  """The colour, grayscale, blur and solarize ops with drawn parameters
  `p` on one float [H, W, 3] image in [0, 1]."""
  if spec.p_jitter > 0:
    x = jnp.where(p["jitter"], color_jitter(x, p, spec), x)
  if spec.p_gray > 0:
    luma = _LUMA_TF if spec.color == "tf" else _LUMA
    x = jnp.where(p["gray"], grayscale(x, luma), x)
  if spec.p_blur > 0:
    blurred = (gaussian_blur(x, p["sigma"]) if spec.blur == "tf" else
               pil_gaussian_blur(x, p["sigma"], spec.blur_sigma[1]))
    x = jnp.where(p["blur"], blurred, x)
  if spec.p_solarize > 0:
    x = jnp.where(p["solarize"], solarize(x, spec.solarize_threshold), x)
  return jnp.clip(x, 0.0, 1.0)  # blur and HSV round-trips overshoot by ~1 ulp


def augment_image(key, x, spec, p=None):
  """One float [H, W, 3] image in [0, 1] through the spec's random ops
  (parameters `p`, default drawn from `key`)."""
  if spec.ra_layers > 0:
    x = randaugment.rand_augment(
        jax.random.fold_in(key, 7), x, spec.ra_layers, spec.ra_magnitude,
        spec.ra_magnitude_std)
  return apply(x, draw(key, spec) if p is None else p, spec)


def normalize(x, mean=IMAGENET_MEAN, std=IMAGENET_STD):
  return (x - jnp.asarray(mean, x.dtype)) / jnp.asarray(std, x.dtype)


def augment(key, images, spec, mean=IMAGENET_MEAN, std=IMAGENET_STD,
            dtype=jnp.float32):
  """uint8 [n, H, W, 3] -> augmented, normalized `dtype` [n, H, W, 3].

  Example i uses `jax.random.fold_in(key, i)`: draws depend on the key and
  the example's position in the (global) batch, not on the device layout.
  """
  # float32, or float64 for a float64 model (the recipe-parity tests).
  x = images.astype(jnp.promote_types(dtype, jnp.float32)) / 255.0
  keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(
      jnp.arange(x.shape[0]))
  params = jax.vmap(lambda k: draw(k, spec))(keys)
  if spec.blur_sigma_shared:  # one σ for the whole batch (SimCLR's)
    params["sigma"] = jnp.full_like(
        params["sigma"], draw(jax.random.split(key)[1], spec)["sigma"])
  x = jax.vmap(lambda k, im, p: augment_image(k, im, spec, p))(
      keys, x, params)
  x = normalize(x, mean, std)
  if spec.p_erase > 0:
    x = jax.vmap(lambda k, im: randaugment.random_erase(
        jax.random.fold_in(k, 8), im, spec.p_erase))(keys, x)
  return x.astype(dtype)


def augment_views(key, batch, specs, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                  dtype=jnp.float32):
  """Host batch {"global": [n,Vg,G,G,3], "local": [n,Vl,L,L,3]} -> list of V
  arrays [n, S, S, 3], global views first; view v uses specs[v] and
  fold_in(key, v)."""
  views = [batch["global"][:, v] for v in range(batch["global"].shape[1])]
  if "local" in batch:
    views += [batch["local"][:, v] for v in range(batch["local"].shape[1])]
  if len(specs) != len(views):
    raise ValueError(f"{len(views)} views in the batch but {len(specs)} "
                     "augmentation specs; give one spec per view.")
  return [augment(jax.random.fold_in(key, v), x, s, mean, std, dtype)
          for v, (x, s) in enumerate(zip(views, specs))]

