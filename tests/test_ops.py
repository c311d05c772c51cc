import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import ops


def _unit(x):
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("n", [1, 5, 64, 301])
def test_kth_largest_is_exact_with_ties_and_signs(n):
  rng = np.random.default_rng(n)
  x = rng.normal(size=(n, n)).astype(np.float32)
  x[0, : n // 2] = x[-1, -1]  # ties
  x.flat[::7] = 0.0  # zeros, and -0.0 below
  x.flat[::11] = -0.0
  fn = jax.jit(ops.kth_largest, static_argnums=1)
  srt = np.sort(x.ravel())[::-1]
  for k in sorted({1, min(2, n * n), max(1, n * n // 2), n * n}):
    assert float(fn(jnp.asarray(x), k)) == srt[k - 1]


def test_kth_largest_in_float64_is_exact_beyond_float32():
  # Entries that differ only below float32's precision: a float32 search
  # would return a rounded value, not the entry itself.
  x = 1.0 + np.arange(-50, 50, dtype=np.float64) * 1e-12
  x[::3] *= -1.0
  srt = np.sort(x)[::-1]
  with jax.enable_x64(True):
    fn = jax.jit(ops.kth_largest, static_argnums=1)
    got = [float(fn(jnp.asarray(x), k)) for k in (1, 17, 50, 100)]
  assert got == [srt[k - 1] for k in (1, 17, 50, 100)]


def vmf_score_reference(z, eta=0.01, min_tau=0.1):
  """The vMF score of ops.vmf_score (its docstring) in float64 numpy, with a
  full sort and a general solve."""
  n = len(z)
  s = z @ z.T
  tau = max(np.sort((1 - s).ravel())[::-1][n * n // 2 - 1], min_tau)
  k = np.exp(s / tau)
  g = k.sum(1, keepdims=True) * z / tau
  return -np.linalg.solve(k + eta * np.eye(n), g), tau


# n ≥ d solves for g; n < d solves for diag(K1/τ), then multiplies by z.
@pytest.mark.parametrize("n,d,spread", [(64, 8, 1.0), (128, 32, 1.0),
                                        (50, 16, 0.05), (32, 96, 1.0),
                                        (40, 64, 0.02)])
def test_vmf_score_matches_reference(n, d, spread):
  rng = np.random.default_rng(d)
  z = _unit(np.eye(d)[0] + spread * rng.normal(size=(n, d)))
  s_ref, tau_ref = vmf_score_reference(z)
  s, tau = ops.vmf_score(jnp.asarray(z, jnp.float32))
  assert float(tau) == pytest.approx(tau_ref, rel=1e-5)
  np.testing.assert_allclose(np.asarray(s), s_ref, rtol=2e-3,
                             atol=2e-3 * np.abs(s_ref).max())
  if spread < 0.1:
    assert float(tau) == pytest.approx(0.1)  # concentrated: τ floored at min_tau


def test_vmf_score_float32_under_bfloat16_and_no_gradient():
  z = _unit(np.random.default_rng(0).normal(size=(32, 8)))
  s32, _ = ops.vmf_score(jnp.asarray(z, jnp.float32))
  s16, _ = ops.vmf_score(jnp.asarray(z, jnp.bfloat16))
  assert s16.dtype == jnp.float32
  np.testing.assert_allclose(np.asarray(s16), np.asarray(s32), rtol=0.1,
                             atol=0.05 * np.abs(np.asarray(s32)).max())
  g = jax.grad(lambda z: jnp.sum(ops.vmf_score(z)[0]))(jnp.asarray(z))
  assert float(jnp.abs(g).max()) == 0.0
