import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg

from ssljax.analysis import reconstruction as rec


def _images(n=400, shape=(1, 6, 6), seed=0):
  """Spatially smooth random images: correlated pixels, like real ones."""
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(n,) + shape)
  k = np.array([0.25, 0.5, 0.25])
  for axis in (2, 3):
    z = np.apply_along_axis(lambda v: np.convolve(v, k, "same"), axis, z)
  return (z + 0.05 * rng.normal(size=z.shape)).reshape(n, -1)


def _angles(a, b):
  return scipy.linalg.subspace_angles(np.asarray(a, np.float64),
                                      np.asarray(b, np.float64))


def test_pca_projection_protocol_and_split():
  x = _images(300, (3, 4, 4))
  out = rec.pca_projection(jnp.asarray(x, jnp.float32), 0.9)
  xs = x / (x.std(axis=1, keepdims=True) + 1e-6)
  xc = xs - xs.mean(0)
  evals = np.linalg.eigvalsh(xc.T @ xc)[::-1]
  share = evals / evals.sum()
  k = int(np.searchsorted(np.cumsum(share), 0.9)) + 1
  assert out["k"] == k and out["top"].shape == (48, k)
  assert out["bottom"].shape == (48, 48 - k)
  basis = np.concatenate([out["top"], out["bottom"]], axis=1)
  np.testing.assert_allclose(basis.T @ basis, np.eye(48), atol=1e-4)
  top = rec.project(jnp.asarray(x[:5], jnp.float32), out["mean"], out["top"])
  bottom = rec.project(jnp.asarray(x[:5], jnp.float32), out["mean"],
                       out["bottom"])
  np.testing.assert_allclose(np.std(np.asarray(top), axis=1), 1, rtol=1e-3)
  # the two projections are orthogonal before re-normalization
  assert np.abs(np.sum(np.asarray(top) * np.asarray(bottom), axis=1)).max(
  ) < 1e-2 * 48


def test_clean_closed_form_is_pca_with_the_eckart_young_loss():
  x = _images().T  # D × N
  k = 5
  v, w = rec.linear_ae_closed_form(jnp.asarray(x), k)
  xc = x - x.mean(1, keepdims=True)
  evals, evecs = np.linalg.eigh(xc @ xc.T)
  assert np.max(_angles(v, evecs[:, -k:])) < 1e-3
  loss = rec.expected_loss(jnp.asarray(x), v, w)
  np.testing.assert_allclose(loss, evals[:-k].sum() / x.shape[1], rtol=1e-3)


def test_gaussian_noise_keeps_the_pca_subspace_masking_does_not():
  x = _images().T
  k = 5
  clean, _ = rec.linear_ae_closed_form(jnp.asarray(x), k)
  noisy, _ = rec.linear_ae_closed_form(jnp.asarray(x), k, noise_std=0.5)
  assert np.max(_angles(clean, noisy)) < 1e-3
  masked, _ = rec.linear_ae_closed_form(jnp.asarray(x), k, mask_prob=0.5,
                                        patch_size=2, image_shape=(1, 6, 6))
  assert np.max(_angles(clean, masked)) > 0.1


@pytest.mark.parametrize("kind", [{}, {"noise_std": 0.5},
                                  {"mask_prob": 0.5, "patch_size": 2,
                                   "image_shape": (1, 6, 6)}])
def test_sgd_on_the_linear_ae_reaches_the_closed_form_from_above(kind):
  x = jnp.asarray(_images(200).T)
  k = 4
  v, w = rec.linear_ae_closed_form(x, k, **kind)
  best = float(rec.expected_loss(x, v, w, **kind))
  params = {"v": 0.1 * jax.random.normal(jax.random.PRNGKey(0), (36, k)),
            "w": 0.1 * jax.random.normal(jax.random.PRNGKey(1), (k, 36))}
  tx = optax.adam(1e-2)
  opt = tx.init(params)
  loss_fn = lambda p: rec.expected_loss(x, p["v"], p["w"], **kind)

  @jax.jit
  def step(p, o):
    loss, g = jax.value_and_grad(loss_fn)(p)
    u, o = tx.update(g, o)
    return optax.apply_updates(p, u), o, loss

  losses = []
  for _ in range(3000):
    params, opt, loss = step(params, opt)
    losses.append(float(loss))
  assert min(losses) >= best * (1 - 1e-4)
  assert losses[-1] <= best * 1.01, (losses[-1], best)


def test_alignment_known_answer():
  rng = np.random.default_rng(0)
  n, d = 400, 8
  y = np.repeat(np.arange(2), n // 2)
  x = rng.normal(size=(n, d))
  x[:, 0] += 4.0 * (2 * y - 1)  # the class lives on dimension 0 only
  first = rec.alignment(jnp.asarray(x), jnp.asarray(y), jnp.eye(d))
  last = rec.alignment(jnp.asarray(x), jnp.asarray(y), jnp.eye(d)[:, ::-1])
  assert np.all(np.diff(np.asarray(first)) >= -1e-4)
  np.testing.assert_allclose(first[-1], 100, rtol=1e-5)
  assert first[0] > 95 and last[d - 2] < 40


def test_closed_form_at_cifar_size_is_finite():
  # D = 3·32·32 (speed: benchmarks/reconstruction.py)
  x = jax.random.normal(jax.random.PRNGKey(0), (3072, 600))
  v, w = rec.linear_ae_closed_form(x, 16, mask_prob=0.5, patch_size=4,
                                   image_shape=(3, 32, 32))
  assert np.all(np.isfinite(np.asarray(v))) and w.shape == (16, 3072)


def test_closed_form_is_finite_on_rank_deficient_data():
  """N < D and pixels that never vary (MNIST's padding): M₂ is singular;
  the ridge keeps every corruption's solution finite, and the null-space
  directions come last (they add no label energy)."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(120, 3 * 8 * 8)).astype(np.float32)
  x[:, :12] = 0.0
  y = rng.integers(4, size=120)
  for kw in ({}, {"noise_std": 0.5}, {"mask_prob": 0.5, "patch_size": 2}):
    v, w = rec.linear_ae_closed_form(jnp.asarray(x).T, 192,
                                     image_shape=(3, 8, 8), **kw)
    assert np.isfinite(np.asarray(v)).all() and np.isfinite(
        np.asarray(w)).all()
    curve = np.asarray(rec.alignment(jnp.asarray(x), y, v))
    assert np.isfinite(curve).all()
    np.testing.assert_allclose(curve[118:], 100.0, atol=1e-3)
