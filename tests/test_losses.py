import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses


def vicreg_reference(x, y, sim=25.0, std=25.0, cov=1.0):
  """facebookresearch/vicreg main_vicreg.py VICReg.forward, transcribed to
  numpy (float64), single device."""
  n, d = x.shape
  repr_loss = np.mean((x - y) ** 2)
  x = x - x.mean(0)
  y = y - y.mean(0)
  std_x = np.sqrt(x.var(0, ddof=1) + 0.0001)
  std_y = np.sqrt(y.var(0, ddof=1) + 0.0001)
  std_loss = (np.mean(np.maximum(1 - std_x, 0)) / 2
              + np.mean(np.maximum(1 - std_y, 0)) / 2)
  cov_x = x.T @ x / (n - 1)
  cov_y = y.T @ y / (n - 1)
  off = lambda c: c[~np.eye(d, dtype=bool)]
  cov_loss = (off(cov_x) ** 2).sum() / d + (off(cov_y) ** 2).sum() / d
  return sim * repr_loss + std * std_loss + cov * cov_loss


@pytest.mark.parametrize("n,d", [(64, 16), (16, 64), (32, 32)])
def test_vicreg_matches_official_formula(n, d):
  rng = np.random.default_rng(n + d)
  x = rng.normal(size=(n, d)) * 0.5
  y = x + 0.3 * rng.normal(size=(n, d))
  loss, m = losses.vicreg(jnp.asarray(x, jnp.float32),
                          jnp.asarray(y, jnp.float32))
  np.testing.assert_allclose(loss, vicreg_reference(x, y), rtol=2e-5)
  assert set(m) >= {"loss", "repr_loss", "std_loss", "cov_loss"}
  assert m["loss"].dtype == jnp.float32


def test_gram_and_covariance_paths_agree():
  rng = np.random.default_rng(0)
  for n, d in [(24, 40), (40, 24)]:  # n < d: n×n Gram; n >= d: d×d cov
    z = rng.normal(size=(n, d))
    zc = z - z.mean(0)
    c = zc.T @ zc / (n - 1)
    direct = np.sum(c**2) - np.sum(np.diag(c) ** 2)
    got = losses.off_diagonal_sq_sum(jnp.asarray(zc, jnp.float32))
    np.testing.assert_allclose(got, direct, rtol=1e-5)


def test_vicreg_bfloat16_inputs_compute_in_float32():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(32, 48)).astype(np.float32)
  y = rng.normal(size=(32, 48)).astype(np.float32)
  lo, _ = losses.vicreg(jnp.asarray(x, jnp.bfloat16),
                        jnp.asarray(y, jnp.bfloat16))
  assert lo.dtype == jnp.float32
  xb = np.asarray(jnp.asarray(x, jnp.bfloat16), np.float64)
  yb = np.asarray(jnp.asarray(y, jnp.bfloat16), np.float64)
  np.testing.assert_allclose(lo, vicreg_reference(xb, yb), rtol=1e-5)


def test_vicreg_known_answers():
  # Identical, perfectly whitened views with std 1: only the std floor's eps
  # remains (std = sqrt(1 + 1e-4) > 1), so the loss is 0.
  n, d = 8, 4
  z = np.zeros((n, d))
  z[np.arange(n), np.arange(n) % d] = 1.0
  z = (z - z.mean(0)) / z.std(0, ddof=1)
  loss, m = losses.vicreg(jnp.asarray(z, jnp.float32),
                          jnp.asarray(z, jnp.float32))
  assert float(m["repr_loss"]) == 0.0 and float(m["std_loss"]) == 0.0
  # Collapsed embeddings: std term = 25 * (1 - 0.01) (two halves).
  c = jnp.ones((16, 8))
  _, m = losses.vicreg(c, c)
  np.testing.assert_allclose(m["std_loss"], 1 - np.sqrt(1e-4), rtol=1e-6)


def test_vicreg_global_batch_under_sharding():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  rng = np.random.default_rng(2)
  x = rng.normal(size=(64, 32)).astype(np.float32)
  y = rng.normal(size=(64, 32)).astype(np.float32)
  f = jax.jit(lambda a, b: losses.vicreg(a, b)[0])
  sharded = f(jax.device_put(x, shard), jax.device_put(y, shard))
  np.testing.assert_allclose(sharded, vicreg_reference(x, y), rtol=2e-5)
