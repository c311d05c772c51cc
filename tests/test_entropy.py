import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import entropy

ALPHAS = [1.0, 1.01, 2.0, 3.0]


def _np_entropy(k, alpha):
  """The definition in float64 numpy: normalize, eigenvalues clipped at 0
  and renormalized, Rényi (von Neumann at α = 1), bits."""
  d = np.sqrt(np.diag(k))
  a = k / (len(k) * np.outer(d, d))
  lam = np.clip(np.linalg.eigvalsh((a + a.T) / 2), 0, None)
  lam = lam / lam.sum()
  if alpha == 1.0:
    lam = lam[lam > 0]
    return -np.sum(lam * np.log2(lam))
  return np.log2(np.sum(lam ** alpha)) / (1 - alpha)


def _np_gram(x, sigma):
  d2 = ((x[:, None] - x[None]) ** 2).sum(-1)
  return np.exp(-d2 / (2 * sigma ** 2))


def _pair(seed, n=24):
  """Two Gaussian Grams of dependent samples (x, y = x·W + noise)."""
  rng = np.random.default_rng(seed)
  x = rng.normal(size=(n, 3))
  y = x @ rng.normal(size=(3, 2)) + 0.5 * rng.normal(size=(n, 2))
  return _np_gram(x, 1.0 + seed % 3), _np_gram(y, 0.7 + 0.4 * (seed % 2))


@pytest.mark.parametrize("alpha", ALPHAS)
def test_extremes(alpha):
  n = 16
  np.testing.assert_allclose(entropy.matrix_entropy(jnp.eye(n), alpha),
                             np.log2(n), rtol=1e-5)
  np.testing.assert_allclose(entropy.matrix_entropy(jnp.ones((n, n)), alpha),
                             0.0, atol=1e-4)
  # the normalization makes the scale of K irrelevant
  np.testing.assert_allclose(
      entropy.matrix_entropy(3.0 * jnp.eye(n), alpha), np.log2(n), rtol=1e-5)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_matches_float64_definition(alpha):
  k1, k2 = _pair(0)
  j1, j2 = jnp.asarray(k1, jnp.float32), jnp.asarray(k2, jnp.float32)
  s1, s2 = _np_entropy(k1, alpha), _np_entropy(k2, alpha)
  s12 = _np_entropy(k1 * k2, alpha)
  got = [entropy.matrix_entropy(j1, alpha),
         entropy.matrix_joint_entropy(j1, j2, alpha),
         entropy.matrix_mutual_information(j1, j2, alpha),
         entropy.matrix_conditional_entropy(j1, j2, alpha)]
  for g, want in zip(got, [s1, s12, s1 + s2 - s12, s12 - s2]):
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, want, rtol=2e-4, atol=2e-4)


@pytest.mark.parametrize("alpha", ALPHAS)
def test_joint_entropy_bounds_and_nonnegative_information(alpha):
  for seed in range(6):
    k1, k2 = (jnp.asarray(k, jnp.float32) for k in _pair(seed))
    s1 = float(entropy.matrix_entropy(k1, alpha))
    s2 = float(entropy.matrix_entropy(k2, alpha))
    s12 = float(entropy.matrix_joint_entropy(k1, k2, alpha))
    assert max(s1, s2) <= s12 + 1e-4, (seed, s1, s2, s12)
    assert s12 <= s1 + s2 + 1e-4, (seed, s1, s2, s12)
    assert float(entropy.matrix_mutual_information(k1, k2, alpha)) >= -1e-4
    # the samples are dependent: information is clearly positive
    assert s1 + s2 - s12 > 0.05


def test_frobenius_path_equals_eigenvalue_path():
  x = jax.random.normal(jax.random.PRNGKey(0), (40, 5))

  def both(x):
    a = entropy.normalize_gram(entropy.gram(x, 2.0))
    return entropy.entropy_frobenius(a), entropy.entropy_eigen(a, 2.0)

  frob, eig = both(x)
  np.testing.assert_allclose(frob, eig, rtol=1e-5)
  g_frob = jax.grad(lambda x: both(x)[0])(x)
  g_eig = jax.grad(lambda x: both(x)[1])(x)
  np.testing.assert_allclose(g_frob, g_eig, rtol=1e-3, atol=1e-5)
  assert float(jnp.abs(g_frob).max()) > 1e-3  # not a trivially zero gradient


@pytest.mark.parametrize("alpha", [1.0, 1.01, 2.0, 3.0])
def test_gradient_with_repeated_eigenvalues(alpha):
  # Two identical blocks: eigenvalues 3.1 (twice) and 0.3 (six times).
  k = 0.7 * np.kron(np.eye(2), np.ones((4, 4))) + 0.3 * np.eye(8)
  lam = np.linalg.eigvalsh(k)
  assert np.sum(np.isclose(lam, 0.3)) == 6 and np.sum(np.isclose(lam, 3.1)) == 2
  fn = lambda k: entropy.entropy_eigen(entropy.normalize_gram(k), alpha)
  grad = np.asarray(jax.grad(fn)(jnp.asarray(k, jnp.float32)), np.float64)
  assert np.all(np.isfinite(grad))
  rng = np.random.default_rng(1)
  for _ in range(3):
    e = rng.normal(size=k.shape)
    e = (e + e.T) / 2
    h = 1e-5
    fd = (_np_entropy(k + h * e, alpha) - _np_entropy(k - h * e, alpha)) / (
        2 * h)
    np.testing.assert_allclose(np.sum(grad * e), fd, rtol=2e-3, atol=1e-5)


def test_gradient_finite_at_the_extremes():
  # I/n: one eigenvalue repeated n times; 11ᵀ/n: n − 1 zeros (clipped).
  for k in (jnp.eye(8), jnp.ones((8, 8))):
    for alpha in (1.0, 1.01, 3.0):
      g = jax.grad(lambda k: entropy.matrix_entropy(k, alpha))(k)
      assert np.all(np.isfinite(np.asarray(g))), alpha


def test_bandwidth_rules_known_answers():
  x = jnp.array([[0.0], [1.0], [2.0], [3.0]])
  # pair distances 1, 1, 1, 2, 2, 3: the 3rd largest of the 6 is 2
  np.testing.assert_allclose(entropy.median_bandwidth(x), 2.0, rtol=1e-6)
  np.testing.assert_allclose(entropy.bandwidth(x, "median", 0.5), 1.0,
                             rtol=1e-6)
  s = np.std([0, 1, 2, 3], ddof=1)
  np.testing.assert_allclose(entropy.silverman_bandwidth(x),
                             s * (4 / (3 * 4)) ** 0.2, rtol=1e-5)
  with pytest.raises(ValueError, match="valid: median, silverman"):
    entropy.bandwidth(x, "scott")
  with pytest.raises(ValueError, match="must be a Python number > 0"):
    entropy.matrix_entropy(jnp.eye(3), 0.0)


def test_gram_is_the_gaussian_kernel():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(10, 4)) * 3
  np.testing.assert_allclose(entropy.gram(jnp.asarray(x, jnp.float32), 2.5),
                             _np_gram(x, 2.5), rtol=1e-4, atol=1e-6)
  assert np.all(np.diag(entropy.gram(jnp.asarray(x, jnp.float32), 2.5)) == 1)


@pytest.mark.parametrize("alpha", [1.01, 2.0])
def test_one_device_equals_eight_devices(alpha):
  devices = np.array(jax.devices())
  assert len(devices) == 8
  mesh = jax.sharding.Mesh(devices, ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  rng = np.random.default_rng(0)
  x = rng.normal(size=(64, 6)).astype(np.float32)
  y = (x[:, :3] + 0.3 * rng.normal(size=(64, 3))).astype(np.float32)

  def info(x, y):
    kx = entropy.gram(x, entropy.median_bandwidth(x))
    ky = entropy.gram(y, entropy.bandwidth(y, "median"))
    return entropy.matrix_mutual_information(kx, ky, alpha)

  fn = jax.jit(jax.value_and_grad(info, argnums=(0, 1)))
  one = jax.device_get(fn(jax.device_put(x, devices[0]),
                          jax.device_put(y, devices[0])))
  xs, ys = jax.device_put(x, shard), jax.device_put(y, shard)
  assert len(xs.sharding.device_set) == 8
  eight = jax.device_get(fn(xs, ys))
  # eigh of a matrix summed in another order: ~1e-5 bits of round-off in
  # each ~5-bit entropy, so the difference I is compared in absolute bits.
  atol = 1e-6 if alpha == 2.0 else 1e-4
  np.testing.assert_allclose(eight[0], one[0], rtol=1e-5, atol=atol)
  assert float(one[0]) > 0.1
  for a, b in zip(eight[1], one[1]):
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=10 * atol)
