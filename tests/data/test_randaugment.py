"""RandAugment's operations against PIL (timm applies them through PIL), and
random erasing's box rules."""

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image
from PIL import ImageEnhance
from PIL import ImageOps
import pytest

from ssljax.data import augment as A
from ssljax.data import randaugment as R


def _image(seed=0, size=12):
  rng = np.random.default_rng(seed)
  # A smooth ramp plus noise: every PIL op has something to do.
  ramp = np.linspace(20, 220, size)[None, :, None] * np.ones((size, 1, 3))
  return np.clip(ramp + rng.normal(0, 25, ramp.shape), 0, 255).astype(
      np.uint8)


def _ours(op, img, arg):
  return np.asarray(op(jnp.asarray(img, jnp.float32), arg))


PIL_OPS = [
    ("autocontrast", R.autocontrast, 0.0, ImageOps.autocontrast),
    ("equalize", R.equalize, 0.0, ImageOps.equalize),
    ("invert", R.invert, 0.0, ImageOps.invert),
    ("posterize", R.posterize, 0.5, lambda im: ImageOps.posterize(im, 2)),
    ("solarize", R.solarize, 0.4,
     lambda im: ImageOps.solarize(im, 256 - int(0.4 * 256))),
    ("solarize_add", R.solarize_add, 0.6,
     lambda im: Image.fromarray(np.where(
         np.asarray(im) < 128, np.minimum(np.asarray(im).astype(int) + 66,
                                          255), np.asarray(im)).astype(
                                              np.uint8))),
    ("color", R.color, 1.7, lambda im: ImageEnhance.Color(im).enhance(1.7)),
    ("contrast", R.contrast, 0.3,
     lambda im: ImageEnhance.Contrast(im).enhance(0.3)),
    ("brightness", R.brightness, 1.5,
     lambda im: ImageEnhance.Brightness(im).enhance(1.5)),
    ("sharpness", R.sharpness, 1.8,
     lambda im: ImageEnhance.Sharpness(im).enhance(1.8)),
]


@pytest.mark.parametrize("name,op,arg,pil", PIL_OPS,
                         ids=[o[0] for o in PIL_OPS])
def test_pixel_ops_match_pil(name, op, arg, pil):
  img = _image()
  want = np.asarray(pil(Image.fromarray(img))).astype(np.float32)
  got = _ours(op, img, arg)
  np.testing.assert_array_equal(got, want, err_msg=name)


def test_integer_translation_and_quarter_rotation_are_exact():
  img = _image(1)
  fill = np.asarray(R.FILL, np.float32)
  got = _ours(R.translate_x, img, 3 / 12)  # output x reads input x + 3
  np.testing.assert_array_equal(got[:, :9], img[:, 3:])
  np.testing.assert_array_equal(got[:, 9:], np.broadcast_to(fill, (12, 3, 3)))
  want = np.asarray(Image.fromarray(img).transform(
      (12, 12), Image.Transform.AFFINE, (1, 0, 0, 0, 1, -2),
      fillcolor=R.FILL)).astype(np.float32)
  np.testing.assert_array_equal(_ours(R.translate_y, img, -2 / 12), want)
  want = np.asarray(Image.fromarray(img).rotate(90)).astype(np.float32)
  np.testing.assert_allclose(_ours(R.rotate, img, 90.0), want, atol=1e-3)


def test_shear_matches_pil_bilinear_inside_the_image():
  img = _image(2)
  want = np.asarray(Image.fromarray(img).transform(
      (12, 12), Image.Transform.AFFINE, (1, 0.25, 0, 0, 1, 0),
      Image.Resampling.BILINEAR, fillcolor=R.FILL)).astype(np.float32)
  got = _ours(R.shear_x, img, 0.25)
  # Columns 1..7 stay inside the source for every row: no fill involved.
  np.testing.assert_allclose(got[:, 1:8], want[:, 1:8], atol=1.0)


def test_rand_augment_magnitude_zero_with_identity_ops():
  x = jnp.asarray(_image(3), jnp.float32) / 255.0
  # prob 0: nothing applied whatever the draws.
  out = R.rand_augment(jax.random.key(0), x, 2, 9.0, 0.5, prob=0.0)
  np.testing.assert_allclose(out, jnp.round(x * 255) / 255, atol=1e-6)
  # At magnitude 0 timm's geometric, solarize and enhance ops are the
  # identity (angle, shear, shift 0; threshold 256; add 0; factor 1.0).
  levels = jnp.round(x * 255)
  for i, (name, _, _) in enumerate(R.OPS):
    if name in ("AutoContrast", "Equalize", "Invert", "PosterizeIncreasing"):
      continue
    for sign in (1.0, -1.0):
      np.testing.assert_allclose(R.apply_op(i, levels, 0.0, sign), levels,
                                 atol=1e-3, err_msg=name)


def test_erase_boxes_follow_timms_rules():
  keys = jax.random.split(jax.random.key(0), 400)
  found, top, left, bh, bw = jax.vmap(lambda k: R.erase_box(k, 32, 32))(keys)
  assert bool(found.all())
  area = np.asarray(bh * bw) / 32**2
  aspect = np.asarray(bh / bw)
  # Rounding of the sides moves the area and aspect a little past the
  # drawn bounds; a box never leaves the image.
  assert 0.01 < area.min() and area.max() < 0.40
  assert aspect.min() > 0.2 and aspect.max() < 1 / 0.2
  assert bool((top + bh <= 32).all() and (left + bw <= 32).all())


def test_random_erasing_fills_one_rectangle_with_the_given_probability():
  x = jnp.zeros((300, 16, 16, 3)) + 5.0
  keys = jax.random.split(jax.random.key(1), 300)
  out = jax.vmap(lambda k, im: R.random_erase(k, im, 0.25))(keys, x)
  erased = np.asarray(out[..., 0] != 5.0)
  share = erased.any(axis=(1, 2)).mean()
  assert 0.17 < share < 0.33  # 75 expected of 300
  for m in erased[erased.any(axis=(1, 2))][:20]:
    rows, cols = np.nonzero(m.any(1))[0], np.nonzero(m.any(0))[0]
    assert m[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].all()
    assert m.sum() == len(rows) * len(cols)


def test_randaugment_recipe_runs_in_the_view_pipeline():
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8))
  spec = A.RECIPES["randaugment"][0]
  out = jax.jit(lambda k, x: A.augment(k, x, spec))(jax.random.key(0), x)
  assert out.shape == x.shape and bool(jnp.isfinite(out).all())
  again = jax.jit(lambda k, x: A.augment(k, x, spec))(jax.random.key(0), x)
  np.testing.assert_array_equal(out, again)
  assert not np.allclose(out, A.augment(jax.random.key(0), x, A.NONE))
