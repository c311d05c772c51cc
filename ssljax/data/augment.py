"""On-device image augmentation: pure jnp, jit-able, one PRNG key per example.

Runs inside the jitted train step on uint8 crops from the host pipeline. Order
and semantics follow torchvision as used by BYOL / VICReg / MVEB:

  colour jitter (w.p. p_jitter): brightness, contrast, saturation, hue, in a
    random order; factors b ~ U[max(0, 1-B), 1+B] (same for contrast and
    saturation), hue shift h ~ U[-H, H] in turns.
    brightness: clip(b·x); contrast: clip(c·x + (1-c)·mean(gray(x)));
    saturation: clip(s·x + (1-s)·gray(x)); hue: rotate H in HSV.
  grayscale (w.p. p_gray): ITU-R 601 luma (0.299, 0.587, 0.114) on 3 channels.
  Gaussian blur (w.p. p_blur): separable, σ ~ U[blur_sigma] in pixels, kernel
    side the odd number nearest 10% of the image side (≥ 3), reflect padding.
    (torchvision's BYOL recipe: 23 px kernel at 224 px.)
  solarize (w.p. p_solarize): x ← 1 - x where x ≥ 128/255.
  normalize: (x - mean) / std per channel.
  RandAugment (ra_layers > 0, first) and random erasing (w.p. p_erase,
  after normalize): timm's, in ssljax.data.randaugment (MAE fine-tuning).

The two global views of the asymmetric recipes differ only in p_blur and
p_solarize: `RECIPES["byol"]` = (blur 1.0, solarize 0.0) / (blur 0.1,
solarize 0.2); local crops get blur 0.5 and no solarize (DINO / MVEB).
"""

import dataclasses

import jax
import jax.numpy as jnp

from ssljax.data import randaugment

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_LUMA = (0.299, 0.587, 0.114)  # a tuple: no device array at import time


@dataclasses.dataclass(frozen=True)
class ViewAugment:
  """Augmentation of one view. Defaults: BYOL's colour recipe, no blur."""
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


NONE = ViewAugment(p_jitter=0.0, p_gray=0.0)
_BYOL = (ViewAugment(p_blur=1.0), ViewAugment(p_blur=0.1, p_solarize=0.2),
         ViewAugment(p_blur=0.5))
_SIMCLR = (ViewAugment(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2,
                       p_blur=0.5),) * 3
# 32 px recipes (solo-learn CIFAR): no blur, solarize only on view 2.
_CIFAR = (ViewAugment(), ViewAugment(p_solarize=0.2), ViewAugment())
# MAE / DeiT fine-tuning: timm's rand-m9-mstd0.5-inc1 + erasing 0.25.
_RANDAUG = (ViewAugment(p_jitter=0.0, p_gray=0.0, ra_layers=2,
                        p_erase=0.25),) * 3
RECIPES = {"byol": _BYOL, "vicreg": _BYOL, "mveb": _BYOL,
           "barlow_twins": _BYOL, "simclr": _SIMCLR,
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
# Single-image ops on float32 [H, W, 3] in [0, 1].
# ----------------------------------------------------------------------------
def grayscale(x):
  luma = x @ jnp.asarray(_LUMA, x.dtype)
  return jnp.broadcast_to(luma[..., None], x.shape)


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


def color_jitter(key, x, spec):
  """torchvision ColorJitter: four factors, applied in a random order."""
  k_order, kb, kc, ks, kh = jax.random.split(key, 5)

  def factor(k, strength):
    return jax.random.uniform(k, (), minval=max(0.0, 1 - strength),
                              maxval=1 + strength)

  b, c = factor(kb, spec.brightness), factor(kc, spec.contrast)
  s = factor(ks, spec.saturation)
  h = jax.random.uniform(kh, (), minval=-spec.hue, maxval=spec.hue)
  ops = [
      lambda y: jnp.clip(b * y, 0.0, 1.0),
      lambda y: _blend(y, jnp.mean(y @ jnp.asarray(_LUMA, y.dtype)), c),
      lambda y: _blend(y, grayscale(y), s),
      lambda y: adjust_hue(y, h),
  ]
  order = jax.random.permutation(k_order, 4)
  return jax.lax.fori_loop(
      0, 4, lambda i, y: jax.lax.switch(order[i], ops, y), x)


def blur_kernel_size(side):
  k = max(3, int(round(0.1 * side)))
  return k if k % 2 else k + 1


def gaussian_blur(x, sigma):
  """Separable Gaussian blur, reflect padding, kernel ~10% of the side."""
  k = blur_kernel_size(max(x.shape[:2]))
  r = k // 2
  offsets = jnp.arange(-r, r + 1, dtype=jnp.float32)
  w = jnp.exp(-0.5 * (offsets / sigma) ** 2)
  w = w / w.sum()
  h_, w_ = x.shape[:2]
  pad = jnp.pad(x, ((r, r), (0, 0), (0, 0)), mode="reflect")
  x = sum(w[i] * pad[i:i + h_] for i in range(k))
  pad = jnp.pad(x, ((0, 0), (r, r), (0, 0)), mode="reflect")
  return sum(w[i] * pad[:, i:i + w_] for i in range(k))


def solarize(x, threshold=128 / 255):
  return jnp.where(x >= threshold, 1.0 - x, x)


def augment_image(key, x, spec):
  """One float32 [H, W, 3] image in [0, 1] through the spec's random ops."""
  k_jit, k_sigma, k_p = jax.random.split(key, 3)
  u = jax.random.uniform(k_p, (4,))
  if spec.ra_layers > 0:
    x = randaugment.rand_augment(
        jax.random.fold_in(key, 7), x, spec.ra_layers, spec.ra_magnitude,
        spec.ra_magnitude_std)
  if spec.p_jitter > 0:
    x = jnp.where(u[0] < spec.p_jitter, color_jitter(k_jit, x, spec), x)
  if spec.p_gray > 0:
    x = jnp.where(u[1] < spec.p_gray, grayscale(x), x)
  if spec.p_blur > 0:
    sigma = jax.random.uniform(k_sigma, (), minval=spec.blur_sigma[0],
                               maxval=spec.blur_sigma[1])
    x = jnp.where(u[2] < spec.p_blur, gaussian_blur(x, sigma), x)
  if spec.p_solarize > 0:
    x = jnp.where(u[3] < spec.p_solarize, solarize(x), x)
  return jnp.clip(x, 0.0, 1.0)  # blur and HSV round-trips overshoot by ~1 ulp


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
  x = jax.vmap(lambda k, im: augment_image(k, im, spec))(keys, x)
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

