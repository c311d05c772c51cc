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


# --- masking without image_shape: every coordinate masked on its own -------
def _pca_vs_mask_data(n=2000, seed=0):
  """D = 20, N × D. Coordinates 0, 1: independent, variance 11; 2–9 and
  10–17: two factors, each loading 1 on its 8 coordinates (eigenvalue 8);
  all + 0.1 noise. PCA's top 2 are e₀, e₁ (11 > 8). Independent masking
  (p = ½) gives direction u the generalized eigenvalue
  (1−p)² (uᵀXXᵀu)² / uᵀ(XXᵀ⊙M)u per N: e₀ → (1−p)·11 = 5.5, a factor →
  8·8/9 ≈ 7.1, so its top 2 are the two factors — orthogonal to PCA's."""
  rng = np.random.default_rng(seed)
  x = 0.1 * rng.normal(size=(n, 20))
  x[:, :2] += np.sqrt(11.0) * rng.normal(size=(n, 2))
  x[:, 2:10] += rng.normal(size=(n, 1))
  x[:, 10:18] += rng.normal(size=(n, 1))
  return x


def _independent_mask_problem(x_dn, p):
  """(A, M₂) in float64 from the definition: x̃ = m ⊙ x, m_i ~ Bernoulli(1−p)
  independently for every coordinate i and sample. E[m_i] = 1−p,
  E[m_i m_j] = (1−p)² (i ≠ j), E[m_i²] = E[m_i] = 1−p, so
  M₁Xᵀ = Σ_n E[x̃_n] x_nᵀ = (1−p) XXᵀ and
  M₂ = Σ_n E[x̃_n x̃_nᵀ] = (1−p)² XXᵀ + p(1−p) diag(XXᵀ)."""
  x = np.asarray(x_dn, np.float64)
  x = x - x.mean(1, keepdims=True)
  xxt = x @ x.T
  m1xt = (1 - p) * xxt
  m2 = (1 - p) ** 2 * xxt + p * (1 - p) * np.diag(np.diag(xxt))
  return m1xt @ m1xt.T, m2


def _cosines(a, b):
  return np.cos(_angles(a, b))


def test_independent_mask_moments_match_sampled_masks():
  """The moments derived in _independent_mask_problem agree with masks
  drawn at random (so the reference below is the definition, not algebra
  copied from the library)."""
  rng = np.random.default_rng(1)
  x = rng.normal(size=(4, 50))
  p = 0.3
  draws = 20000
  m = rng.random(size=(draws, 4, 50)) >= p  # kept w.p. 1 − p
  xc = x - x.mean(1, keepdims=True)  # the moments are of the centred data
  xt = m * xc
  m2_mc = np.einsum("tin,tjn->ij", xt, xt) / draws
  m1xt_mc = np.einsum("tin,jn->ij", xt, xc) / draws
  a, m2 = _independent_mask_problem(x, p)
  scale = np.abs(m2).max()
  np.testing.assert_allclose(m2_mc, m2, atol=0.02 * scale)
  np.testing.assert_allclose(m1xt_mc @ m1xt_mc.T, a, atol=0.02 * scale**2)


@pytest.mark.parametrize("data,k", [("pca_vs_mask", 2), ("images", 5)])
def test_default_masking_is_the_independent_coordinate_problem(data, k):
  x = (_pca_vs_mask_data() if data == "pca_vs_mask" else _images()).T
  p = 0.5
  a, m2 = _independent_mask_problem(x, p)
  _, ref = scipy.linalg.eigh(a, m2)  # generalized symmetric, ascending
  ref = ref[:, ::-1][:, :k]
  v, _ = rec.linear_ae_closed_form(jnp.asarray(x, jnp.float32), k,
                                   mask_prob=p)
  assert _cosines(v, ref).min() >= 0.999
  # (1, D, 1) with patch_size 1 is the documented equivalent
  v1, _ = rec.linear_ae_closed_form(jnp.asarray(x, jnp.float32), k,
                                    mask_prob=p, image_shape=(1, x.shape[0], 1))
  assert _cosines(v1, ref).min() >= 0.999
  if data == "pca_vs_mask":
    xc = x - x.mean(1, keepdims=True)
    pca = np.linalg.eigh(xc @ xc.T)[1][:, ::-1][:, :k]
    assert _cosines(pca, np.eye(x.shape[0])[:, :2]).min() > 0.99  # e₀, e₁
    # not the PCA subspace: nearly orthogonal to it (exactly, as N → ∞;
    # the old (D, 1, 1) default gave cosines 1)
    assert _cosines(v, pca).max() < 0.5


def test_mask_image_shape_semantics():
  x = _pca_vs_mask_data(500).T
  d, p = x.shape[0], 0.5
  xc = x - x.mean(1, keepdims=True)
  xxt = xc @ xc.T
  xj = jnp.asarray(x, jnp.float64 if jax.config.jax_enable_x64
                   else jnp.float32)
  xcj = xj - xj.mean(axis=1, keepdims=True)
  tol = dict(rtol=1e-4, atol=1e-3 * np.abs(xxt).max())
  _, m2_ref = _independent_mask_problem(x, p)
  for shape in (None, (1, d, 1)):
    m1xt, m2 = rec.corruption_moments(xcj, mask_prob=p, image_shape=shape)
    np.testing.assert_allclose(m2, m2_ref, **tol)
    np.testing.assert_allclose(m1xt, (1 - p) * xxt, **tol)
  # (D, 1, 1): one pixel of D channels, a single patch: M₂ = (1−p) XXᵀ,
  # whose closed form is PCA's subspace
  _, m2 = rec.corruption_moments(xcj, mask_prob=p, image_shape=(d, 1, 1))
  np.testing.assert_allclose(m2, (1 - p) * xxt, **tol)
  v, _ = rec.linear_ae_closed_form(xj, 2, mask_prob=p, image_shape=(d, 1, 1))
  pca = np.linalg.eigh(xxt)[1][:, -2:]
  assert _cosines(v, pca).min() >= 0.999
  # patches of (1, D, 1) are runs of patch_size consecutive coordinates
  m = np.asarray(rec.mask_matrix(p, 2, (1, 4, 1)))
  same = np.kron(np.eye(2), np.ones((2, 2))).astype(bool)
  np.testing.assert_allclose(m, np.where(same, 1 - p, (1 - p) ** 2))
  # patch_size > 1 needs image_shape; a wrong image_shape is refused
  with pytest.raises(ValueError, match="needs image_shape"):
    rec.linear_ae_closed_form(xj, 2, mask_prob=p, patch_size=2)
  with pytest.raises(ValueError, match="does not have"):
    rec.corruption_moments(xcj, mask_prob=p, image_shape=(1, d + 1, 1))
