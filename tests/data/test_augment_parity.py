"""ssljax's augmentation ops against the official pipelines' ops, on the
same images with the same drawn parameters (`augment.draw`).

torchvision on PIL images (VICReg, Barlow Twins, MVEB, SwAV, DINO,
solo-learn): ColorJitter's four ops are PIL's ImageEnhance Brightness,
Contrast and Color and torchvision's `_functional_pil.adjust_hue` (HSV in
uint8, the shift int32(h·255) wrapped in uint8), transcribed here;
RandomGrayscale is PIL's "L"; the blur is PIL's GaussianBlur(radius=σ);
solarize is ImageOps.solarize(128). PIL rounds to uint8 after every op and
ssljax computes in float (hue included: an exact rotation), so the
tolerance is in levels of 1/255, stated per op.

BYOL (deepmind-research byol/utils/augmentations.py) and SimCLR
(google-research/simclr tf2/data_util.py) compute in float: their
formulas, transcribed in NumPy float64 with colorsys for HSV and
scipy.ndimage for the SAME-padded Gaussian, agree with ssljax to 1e-9.
"""

import colorsys

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps
import pytest
from scipy import ndimage

from ssljax.data import augment as A

N, SIZE = 32, 48


@pytest.fixture(autouse=True)
def _float64():
  with jax.enable_x64(True):
    yield


def _images(n=N, size=SIZE, seed=0):
  """Smooth images (upsampled noise) and a few of pure noise: uint8."""
  rng = np.random.default_rng(seed)
  out = [np.asarray(Image.fromarray(
      rng.integers(0, 256, (6, 6, 3), np.uint8)).resize(
          (size, size), Image.BICUBIC)) for _ in range(n - 4)]
  out += [rng.integers(0, 256, (size, size, 3), np.uint8) for _ in range(4)]
  return np.stack(out)


def _draws(spec, n=N, seed=0):
  keys = jax.random.split(jax.random.key(seed), n)
  p = jax.vmap(lambda k: A.draw(k, spec))(keys)
  return [{k: np.asarray(v[i]) for k, v in p.items()} for i in range(n)]


_apply = jax.jit(A.apply, static_argnums=2)


def _ours(img, p, spec):
  x = jnp.asarray(img, jnp.float64) / 255.0
  return np.asarray(_apply(x, {k: jnp.asarray(v) for k, v in p.items()},
                           spec))


# ----------------------------------------------------------------------------
# torchvision on PIL images.
# ----------------------------------------------------------------------------
def _pil_hue(img, h):
  hh, s, v = img.convert("HSV").split()
  np_h = np.array(hh, dtype=np.uint8)
  np_h += np.int32(h * 255).astype(np.uint8)
  return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert(
      "RGB")


def _pil_gray(img):
  g = np.asarray(img.convert("L"))
  return Image.fromarray(np.dstack([g, g, g]), "RGB")


def _pil_jitter_op(fn, p):
  return [lambda im: ImageEnhance.Brightness(im).enhance(
              float(p["brightness"])),
          lambda im: ImageEnhance.Contrast(im).enhance(float(p["contrast"])),
          lambda im: ImageEnhance.Color(im).enhance(float(p["saturation"])),
          lambda im: _pil_hue(im, float(p["hue"]))][fn]


def _pil_pipeline(img, p):
  """VICReg's transforms after the crop, with the drawn parameters."""
  im = Image.fromarray(img)
  if p["jitter"]:
    for fn in p["order"]:
      im = _pil_jitter_op(int(fn), p)(im)
  if p["gray"]:
    im = _pil_gray(im)
  if p["blur"]:
    im = im.filter(ImageFilter.GaussianBlur(radius=float(p["sigma"])))
  if p["solarize"]:
    im = ImageOps.solarize(im, threshold=128)
  return np.asarray(im) / 255.0


def _levels(a, b):
  d = np.abs(a - b) * 255
  return d.max(), d.mean()


# One op at a time: (op, max levels, mean levels). Brightness, contrast,
# saturation and grayscale differ by PIL's rounding (and contrast's mean of
# the rounded "L" image, rounded again); the hue by PIL's uint8 HSV (hue
# in 1/255 turns: 6 levels a step on saturated pixels) and its shift
# truncated to 1/255 turn (measured: at most 16.5 levels, mean 1.9); the
# blur by the rounding after each of PIL's six box passes.
_OPS = [("brightness", 1.0, 0.7), ("contrast", 2.0, 1.0),
        ("saturation", 1.5, 0.7), ("hue", 20.0, 2.5), ("gray", 1.0, 0.5),
        ("blur", 4.0, 1.2), ("solarize", 1e-9, 1e-9)]


@pytest.mark.parametrize("op,max_levels,mean_levels", _OPS)
def test_each_op_equals_torchvision_on_pil(op, max_levels, mean_levels):
  spec = A.ViewAugment(p_jitter=1.0, p_gray=1.0, p_blur=1.0, p_solarize=1.0,
                       brightness=0.8, contrast=0.8, saturation=0.8, hue=0.5)
  only = {"jitter": False, "gray": False, "blur": False, "solarize": False}
  images, worst = _images(), []
  for img, p in zip(images, _draws(spec)):
    p.update(only)
    if op in ("brightness", "contrast", "saturation", "hue"):
      fn = ["brightness", "contrast", "saturation", "hue"].index(op)
      # The other three ops at their identity (factor 1, hue shift 0).
      p["jitter"], p["order"] = True, np.arange(4)
      for k, identity in zip(["brightness", "contrast", "saturation", "hue"],
                             [1.0, 1.0, 1.0, 0.0]):
        p[k] = p[k] if k == op else np.asarray(identity)
      want = np.asarray(_pil_jitter_op(fn, p)(Image.fromarray(img))) / 255
    else:
      p[op] = True
      want = _pil_pipeline(img, p)
    worst.append(_levels(_ours(img, p, spec), want))
  worst = np.max(worst, axis=0)
  assert worst[0] <= max_levels and worst[1] <= mean_levels, (op, worst)


def test_recipe_pipelines_equal_torchvision_on_pil():
  """The whole chain of each view of the "vicreg" and "swav" recipes
  (jitter in the drawn order, grayscale, blur, solarize)."""
  images = _images()
  for recipe in ("vicreg", "swav"):
    for v, spec in enumerate(A.view_specs(recipe, 2, 1)):
      diffs = [_levels(_ours(img, p, spec), _pil_pipeline(img, p))
               for img, p in zip(images, _draws(spec, seed=v))]
      worst = np.max(diffs, axis=0)
      # The hue's quantization, carried through the ops after it.
      assert worst[0] <= 20 and worst[1] <= 2.5, (recipe, v, worst)


def test_pil_blur_has_variance_sigma_squared():
  """Gwosdek et al.'s extended box is chosen so that its passes add up to
  the variance σ² exactly: the impulse response's marginal along the
  height (the width runs the same passes) sums to 1 and has variance σ²
  (a wrong box radius or end weight fails this)."""
  x = np.zeros((41, 41, 3))
  x[20, 20] = 1.0
  for sigma in (0.1, 0.7, 1.0, 1.37, 2.0):
    k = np.asarray(A.pil_gaussian_blur(jnp.asarray(x), sigma))[..., 0].sum(1)
    offsets = np.arange(41) - 20
    np.testing.assert_allclose(k.sum(), 1.0, rtol=1e-12)
    np.testing.assert_allclose((k * offsets**2).sum(), sigma**2, rtol=1e-9)


# ----------------------------------------------------------------------------
# BYOL's and SimCLR's float ops.
# ----------------------------------------------------------------------------
def _hsv_map(x, fn):
  flat = x.reshape(-1, 3)
  out = [colorsys.hsv_to_rgb(*fn(*colorsys.rgb_to_hsv(*px))) for px in flat]
  return np.asarray(out).reshape(x.shape)


def _tf_blur(x, sigma):
  r = int(x.shape[0] / 10 / 2)
  k = np.exp(-np.arange(-r, r + 1) ** 2 / (2 * sigma ** 2))
  k /= k.sum()
  for axis in (0, 1):
    x = ndimage.convolve1d(x, k, axis=axis, mode="constant", cval=0.0)
  return x


def _tf_pipeline(img, p, spec):
  """byol/utils/augmentations.py's color_transform, gaussian_blur and
  solarize (SimCLR's tf.image ops are the same formulas, with brightness
  multiplied when not additive); each op clipped to [0, 1]."""
  x, clip = img / 255.0, lambda y: np.clip(y, 0.0, 1.0)
  ops = [
      lambda y: clip(y + p["brightness"] if spec.additive_brightness else
                     y * p["brightness"]),
      lambda y: clip((y - y.mean((0, 1))) * p["contrast"] + y.mean((0, 1))),
      lambda y: clip(_hsv_map(y, lambda h, s, v: (
          h, min(max(s * p["saturation"], 0.0), 1.0), v))),
      lambda y: clip(_hsv_map(y, lambda h, s, v: (
          (h + p["hue"]) % 1.0, s, v))),
  ]
  if p["jitter"]:
    for fn in p["order"]:
      x = ops[int(fn)](x)
  if p["gray"]:
    x = clip(np.repeat(x @ np.array([0.2989, 0.587, 0.114])[:, None], 3,
                       axis=-1).reshape(x.shape))
  if p["blur"]:
    x = _tf_blur(x, float(p["sigma"]))
  if p["solarize"]:
    x = np.where(x < spec.solarize_threshold, x, 1.0 - x)  # BYOL's: 0.5
  return clip(x)


@pytest.mark.parametrize("recipe", ["byol", "simclr"])
def test_tf_ops_equal_byol_and_simclr_formulas(recipe):
  images = _images(n=8)
  for v, spec in enumerate(A.view_specs(recipe, 2)):
    forced = A.ViewAugment(**{**spec.__dict__, "p_jitter": 0.9,
                              "p_gray": 0.3, "p_blur": 0.6,
                              "p_solarize": 0.5})
    for img, p in zip(images, _draws(forced, n=8, seed=v)):
      np.testing.assert_allclose(_ours(img, p, forced),
                                 _tf_pipeline(img, p, forced), atol=1e-9)


def test_recipes_follow_their_official_pipelines():
  byol1, byol2 = A.view_specs("byol", 2)
  assert (byol1.p_blur, byol1.p_solarize) == (1.0, 0.0)
  assert (byol2.p_blur, byol2.p_solarize) == (0.1, 0.2)
  assert byol1.additive_brightness and byol1.solarize_threshold == 0.5
  p = _draws(byol1, n=200)
  b = np.array([d["brightness"] for d in p])
  assert b.min() < -0.3 and b.max() > 0.3  # δ ~ U(−0.4, 0.4)
  simclr = A.view_specs("simclr", 2)[0]
  assert not simclr.additive_brightness and simclr.blur_sigma_shared
  for name in ("vicreg", "barlow_twins", "mveb", "dino", "nnclr", "swav"):
    assert all(s.color == "torchvision" and s.blur == "pil"
               for s in A.view_specs(name, 2, 1)), name
  swav = A.view_specs("swav", 2, 1)
  assert all(s.p_blur == 0.5 and s.p_solarize == 0 and s.brightness == 0.8
             for s in swav)


def test_simclr_draws_one_blur_sigma_per_batch():
  x = jnp.asarray(np.broadcast_to(_images(n=5)[:1], (6, SIZE, SIZE, 3)))
  blur_only = dict(p_jitter=0.0, p_gray=0.0, p_blur=1.0)
  for shared in (True, False):
    spec = A.ViewAugment(blur="tf", blur_sigma_shared=shared, **blur_only)
    out = np.asarray(A.augment(jax.random.key(0), x, spec))
    same = all(np.array_equal(out[0], o) for o in out[1:])
    assert same == shared
