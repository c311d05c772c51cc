"""Mixup / CutMix: targets are distributions whose weights are the mixed
amounts (the blend factor, the pixel area)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.data import mixup


def _batch(n=6, size=10, k=5):
  # Example i is the constant image i: the source of every pixel is known.
  x = jnp.broadcast_to(jnp.arange(n, dtype=jnp.float32)[:, None, None, None],
                       (n, size, size, 3))
  return x, jnp.arange(n) % k


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_targets_match_the_pasted_area(seed):
  x, y = _batch()
  out, targets, lam = mixup.mix(jax.random.key(seed), x, y, 5,
                                mixup_alpha=0.0, cutmix_alpha=1.0,
                                label_smoothing=0.1)
  np.testing.assert_allclose(targets.sum(-1), 1.0, atol=1e-6)
  n = x.shape[0]
  for i in range(n):
    own = float(jnp.mean(out[i, ..., 0] == i))
    other = float(jnp.mean(out[i, ..., 0] == n - 1 - i))
    np.testing.assert_allclose(own, float(lam), atol=1e-6)
    np.testing.assert_allclose(own + other, 1.0, atol=1e-6)
    want = (lam * (0.9 * jax.nn.one_hot(y[i], 5) + 0.02)
            + (1 - lam) * (0.9 * jax.nn.one_hot(y[n - 1 - i], 5) + 0.02))
    np.testing.assert_allclose(targets[i], want, atol=1e-6)


def test_mixup_blends_images_and_targets_by_the_same_lambda():
  x, y = _batch()
  out, targets, lam = mixup.mix(jax.random.key(3), x, y, 5, mixup_alpha=0.8,
                                cutmix_alpha=0.0)
  n = x.shape[0]
  want = lam * jnp.arange(n) + (1 - lam) * jnp.arange(n)[::-1]
  np.testing.assert_allclose(out[:, 0, 0, 0], want, atol=1e-5)
  np.testing.assert_allclose(targets.sum(-1), 1.0, atol=1e-6)
  np.testing.assert_allclose(
      targets, lam * jax.nn.one_hot(y, 5)
      + (1 - lam) * jax.nn.one_hot(y[::-1], 5), atol=1e-6)


def test_switch_probability_and_off_settings():
  x, y = _batch()
  lams, cut = [], []
  for s in range(200):
    out, _, lam = mixup.mix(jax.random.key(s), x, y, 5)
    lams.append(float(lam))
    # CutMix leaves pixels with integer values, mixup blends them.
    cut.append(bool(jnp.all(out == jnp.round(out))))
  assert 0.35 < np.mean(cut) < 0.65  # switch_prob 0.5
  # Mixup's λ ~ Beta(0.8, 0.8): mean 0.5, standard deviation 0.31.
  mix_lams = np.asarray([l for l, c in zip(lams, cut) if not c])
  assert 0.38 < mix_lams.mean() < 0.62 and 0.22 < mix_lams.std() < 0.40
  out, targets, lam = mixup.mix(jax.random.key(0), x, y, 5, 0.0, 0.0)
  np.testing.assert_array_equal(out, x)
  np.testing.assert_array_equal(targets, jax.nn.one_hot(y, 5))
  assert float(lam) == 1.0
  out, _, lam = mixup.mix(jax.random.key(0), x, y, 5, prob=0.0)
  np.testing.assert_array_equal(out, x)
