import colorsys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.data import augment as A

RAW = dict(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def _images(n=16, size=16, seed=0):
  rng = np.random.default_rng(seed)
  return jnp.asarray(rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8))


def test_identity_at_zero_strength():
  x = _images()
  out = A.augment(jax.random.key(0), x, A.NONE, **RAW)
  np.testing.assert_array_equal(out, x / 255.0)
  zero = A.ViewAugment(p_jitter=1.0, brightness=0, contrast=0, saturation=0,
                       hue=0, p_gray=0)
  out = A.augment(jax.random.key(0), x, zero, **RAW)
  np.testing.assert_allclose(out, x / 255.0, atol=2e-6)


def test_grayscale_channels_equal():
  spec = A.ViewAugment(p_jitter=0, p_gray=1.0)
  out = A.augment(jax.random.key(1), _images(), spec, **RAW)
  np.testing.assert_allclose(out[..., 0], out[..., 1], atol=1e-6)
  np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-6)


def test_output_range_and_dtype():
  spec = A.ViewAugment(p_jitter=1.0, brightness=0.8, contrast=0.8,
                       saturation=0.8, hue=0.5, p_blur=1.0, p_solarize=0.5)
  out = A.augment(jax.random.key(2), _images(), spec, **RAW)
  assert out.dtype == jnp.float32
  assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
  bf = A.augment(jax.random.key(2), _images(), spec, dtype=jnp.bfloat16)
  assert bf.dtype == jnp.bfloat16


def test_deterministic_per_key_and_jit_equals_eager():
  spec = A.RECIPES["byol"][1]
  x = _images()
  a = A.augment(jax.random.key(3), x, spec)
  b = jax.jit(lambda k, y: A.augment(k, y, spec))(jax.random.key(3), x)
  np.testing.assert_allclose(a, b, atol=1e-5)
  c = A.augment(jax.random.key(4), x, spec)
  assert not np.allclose(a, c)


def test_different_examples_get_different_draws():
  """Identical inputs must come out differently augmented."""
  x = jnp.broadcast_to(_images(1, seed=7), (8, 16, 16, 3))
  spec = A.ViewAugment(p_jitter=1.0)
  out = np.asarray(A.augment(jax.random.key(5), x, spec, **RAW))
  diffs = [np.abs(out[i] - out[j]).max() for i in range(8) for j in range(i)]
  assert min(diffs) > 1e-3


def test_per_view_probabilities():
  n = 4000
  x = jnp.full((n, 4, 4, 3), 200, jnp.uint8)  # solarize flips 200 -> 55
  spec = A.ViewAugment(p_jitter=0, p_gray=0, p_solarize=0.2)
  out = np.asarray(A.augment(jax.random.key(6), x, spec, **RAW))
  frac = np.mean(out[:, 0, 0, 0] < 0.5)
  assert abs(frac - 0.2) < 0.03
  specs = A.view_specs("byol", 2, 2)
  assert specs[0].p_blur == 1.0 and specs[1].p_blur == 0.1
  assert specs[0].p_solarize == 0.0 and specs[1].p_solarize == 0.2
  assert specs[2].p_solarize == 0.0 and len(specs) == 4
  with pytest.raises(ValueError, match="valid: barlow_twins, byol"):
    A.view_specs("byol2")


def test_hue_matches_colorsys():
  img = np.random.default_rng(1).random((6, 6, 3)).astype(np.float32)
  got = np.asarray(A.adjust_hue(jnp.asarray(img), 0.3))
  def ref(p):
    h, s, v = colorsys.rgb_to_hsv(*p)
    return colorsys.hsv_to_rgb((h + 0.3) % 1.0, s, v)
  want = np.array([[ref(p) for p in row] for row in img])
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_contrast_and_saturation_torchvision_formulas():
  img = jnp.asarray(np.random.default_rng(2).random((5, 5, 3)), jnp.float32)
  gray = img @ jnp.array([0.299, 0.587, 0.114])
  want = jnp.clip(1.5 * img + (1 - 1.5) * gray.mean(), 0, 1)
  np.testing.assert_allclose(A._blend(img, gray.mean(), 1.5), want, atol=1e-6)
  np.testing.assert_allclose(A.grayscale(img)[..., 1], gray, atol=1e-6)


def test_blur_preserves_constants_and_smooths():
  const = jnp.full((32, 32, 3), 0.3)
  np.testing.assert_allclose(A.pil_gaussian_blur(const, 1.5), const,
                             atol=1e-6)
  # The "tf" blur pads with zeros (BYOL's and SimCLR's SAME convolution):
  # constant inside, darker within the kernel's radius of the border.
  tf = A.gaussian_blur(const, 1.5)
  np.testing.assert_allclose(tf[1:-1, 1:-1], const[1:-1, 1:-1], atol=1e-6)
  assert float(tf[0, 0, 0]) < 0.29
  noise = jnp.asarray(np.random.default_rng(3).random((32, 32, 3)),
                      jnp.float32)
  for blur in (A.gaussian_blur, A.pil_gaussian_blur):
    assert float(blur(noise, 2.0).std()) < 0.6 * float(noise.std())
  assert A.blur_kernel_size(224) == 23 and A.blur_kernel_size(32) == 3
  assert A.blur_kernel_size(96) == 9 and A.blur_kernel_size(19) == 1


def test_augment_views_layout():
  batch = {"global": _images(4 * 2).reshape(4, 2, 16, 16, 3),
           "local": _images(4 * 3, size=8).reshape(4, 3, 8, 8, 3)}
  views = A.augment_views(jax.random.key(0), batch, A.view_specs("byol", 2, 3))
  assert [v.shape for v in views] == [(4, 16, 16, 3)] * 2 + [(4, 8, 8, 3)] * 3
  with pytest.raises(ValueError, match="one spec per view"):
    A.augment_views(jax.random.key(0), batch, A.view_specs("byol", 2, 0))
