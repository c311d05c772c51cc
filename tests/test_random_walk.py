"""ops.affinity_graph and ops.random_walk_partners (SAG-VICReg's kernel)."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats  # test oracle only

from ssljax import ops


def graph_reference(z, k, affinity, scale_k, num_views, aug_weight):
  """ops.affinity_graph's docstring in float64 numpy, kNN by full sort."""
  z = np.asarray(z, np.float64)
  n = len(z)
  if affinity == "cosine":
    u = z / np.linalg.norm(z, axis=1, keepdims=True)
    score = u @ u.T
  else:
    d2 = ((z[:, None] - z[None]) ** 2).sum(-1)
    score = -d2
  image = np.arange(n) % (n // num_views)
  same = image[:, None] == image[None]
  score[same] = -np.inf  # kNN among other images only
  order = np.argsort(-score, axis=1)
  knn = np.zeros((n, n), bool)
  knn[np.arange(n)[:, None], order[:, :k]] = True
  if affinity == "cosine":
    a = np.maximum(score, 0)
  else:
    dist_k = np.sqrt(d2[np.arange(n), order[:, scale_k - 1]])
    s2 = (np.median(dist_k) ** 2 if affinity == "gaussian"
          else dist_k[:, None] * dist_k[None])
    a = np.exp(-d2 / s2)
  w = np.where(knn, a, 0)
  w = (w + w.T) / 2
  w[same & ~np.eye(n, dtype=bool)] = aug_weight
  return w


def _two_views(rng, num_images, d, spread=0.3, centres=None):
  """[2·num_images, d]: view-major rows, the two views of an image close."""
  base = rng.normal(size=(num_images, d))
  if centres is not None:
    base = centres + spread * base
  noise = lambda: 0.05 * rng.normal(size=base.shape)
  return np.concatenate([base + noise(), base + noise()]).astype(np.float32)


def _walk(sampler="walk", **kw):
  return jax.jit(functools.partial(ops.random_walk_partners, sampler=sampler,
                                   **kw))


@pytest.mark.parametrize("affinity", ops.AFFINITIES)
def test_graph_matches_reference(affinity):
  z = _two_views(np.random.default_rng(0), 24, 6)
  got = np.asarray(ops.affinity_graph(jnp.asarray(z), num_neighbors=5,
                                      affinity=affinity, scale_k=3,
                                      aug_weight=0.7))
  want = graph_reference(z, 5, affinity, 3, 2, 0.7)
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
  assert np.all(np.diag(got) == 0) and np.array_equal(got, got.T)
  np.testing.assert_array_equal(got[np.arange(24), np.arange(24) + 24],
                                np.float32(0.7))
  # sparse: each row has its k neighbours, its other view, and those that
  # chose it, far fewer than n
  assert ((got > 0).sum(1) >= 5).all() and (got > 0).sum(1).mean() < 12


def test_graph_has_no_gradient_and_isolated_rows_stay_put():
  z = jnp.asarray(_two_views(np.random.default_rng(1), 8, 4))
  g = jax.grad(lambda z: ops.affinity_graph(z, num_neighbors=3).sum())(z)
  assert float(jnp.abs(g).max()) == 0.0
  # Orthogonal rows: all cosine affinities 0, one view: no edge anywhere.
  eye = jnp.eye(6)
  w = ops.affinity_graph(eye, num_neighbors=2, affinity="cosine",
                         num_views=1)
  np.testing.assert_array_equal(w, np.eye(6))
  p = _walk(num_neighbors=2, steps=3, affinity="cosine", num_views=1)(
      jax.random.PRNGKey(0), eye)
  np.testing.assert_array_equal(p, np.arange(6))


@pytest.mark.parametrize("sampler", ops.SAMPLERS)
@pytest.mark.parametrize("affinity", ops.AFFINITIES)
def test_partners_stay_in_their_cluster(sampler, affinity):
  rng = np.random.default_rng(2)
  d = 8
  centres = np.repeat(np.eye(d)[:2] * 20.0, 16, axis=0)  # 2 far clusters
  z = _two_views(rng, 32, d, spread=1.0, centres=centres)
  cluster = np.tile(np.arange(32) // 16, 2)
  for steps in (1, 4, 15):
    for seed in range(3):
      p = np.asarray(_walk(sampler, num_neighbors=10, steps=steps,
                           affinity=affinity)(jax.random.PRNGKey(seed), z))
      np.testing.assert_array_equal(cluster[p], cluster)
      if steps == 1:
        assert np.all(p != np.arange(64))  # no self-loop: a real move


def _empirical(sampler, z, steps, num_keys, **kw):
  """Partner counts [n, n] over num_keys independent draws."""
  f = jax.jit(jax.vmap(functools.partial(
      ops.random_walk_partners, z_nd=jnp.asarray(z), steps=steps,
      sampler=sampler, **kw)))
  p = np.asarray(f(jax.random.split(jax.random.PRNGKey(3), num_keys)))
  n = p.shape[1]
  return np.stack([np.bincount(p[:, i], minlength=n) for i in range(n)])


@pytest.mark.parametrize("sampler", ops.SAMPLERS)
def test_partner_law_is_row_i_of_p_to_the_t(sampler):
  z = _two_views(np.random.default_rng(4), 8, 3)
  kw = dict(num_neighbors=3, affinity="self_tuning")
  w = graph_reference(z, 3, "self_tuning", 1, 2, 1.0)
  p_t = np.linalg.matrix_power(w / w.sum(1, keepdims=True), 3)
  counts = _empirical(sampler, z, 3, 6000, **kw)
  assert np.all(counts[p_t < 1e-12] == 0)  # never off the walk's support
  chi2, dof = 0.0, 0
  for i in range(len(z)):
    keep = p_t[i] > 1e-12
    expected = 6000 * p_t[i, keep] / p_t[i, keep].sum()
    chi2 += np.sum((counts[i, keep] - expected) ** 2 / expected)
    dof += keep.sum() - 1
  assert stats.chi2.sf(chi2, dof) > 1e-3, (chi2, dof)


@pytest.mark.parametrize("sampler", ops.SAMPLERS)
def test_long_walk_reaches_the_stationary_distribution(sampler):
  # One cluster of 20 images (40 rows), 6 neighbours: a sparse, connected,
  # aperiodic graph. π_j = D_j / Σ D (W symmetric). After 1 step the
  # partner law is far from π; after 60 it must be π, not self or 1-hop.
  z = _two_views(np.random.default_rng(5), 20, 4)
  w = graph_reference(z, 6, "cosine", 3, 2, 1.0)
  pi = w.sum(1) / w.sum()
  p = w / w.sum(1, keepdims=True)
  tv = lambda a, b: 0.5 * np.abs(a - b).sum(-1)
  assert tv(np.linalg.matrix_power(p, 60), pi).max() < 5e-3  # mixed
  kw = dict(num_neighbors=6, affinity="cosine")
  short = _empirical(sampler, z, 1, 4000, **kw) / 4000
  assert tv(short, pi).min() > 0.5
  long = _empirical(sampler, z, 60, 20000, **kw) / 20000
  assert tv(long, pi).max() < 0.06  # sampling noise alone: ≈ 0.02
  assert long.diagonal().max() < 0.1  # not stuck at home


def test_same_key_same_partners_other_key_other_partners():
  z = jnp.asarray(_two_views(np.random.default_rng(6), 64, 16))
  f = _walk(num_neighbors=10, steps=2)
  a = np.asarray(f(jax.random.PRNGKey(0), z))
  np.testing.assert_array_equal(a, f(jax.random.PRNGKey(0), z))
  b = np.asarray(f(jax.random.PRNGKey(1), z))
  assert np.mean(a != b) > 0.3
  assert a.dtype == np.int32 and a.shape == (128,)
  np.testing.assert_array_equal(_walk(steps=0)(jax.random.PRNGKey(0), z),
                                np.arange(128))


@pytest.mark.parametrize("sampler", ops.SAMPLERS)
def test_one_device_equals_eight_devices(sampler):
  z = _two_views(np.random.default_rng(7), 64, 32)
  key = jax.random.PRNGKey(11)
  one = _walk(sampler, num_neighbors=10, steps=3)(key, jnp.asarray(z))
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  assert mesh.size == 8
  zs = jax.device_put(z, jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("data")))
  eight = _walk(sampler, num_neighbors=10, steps=3, mesh=mesh)(key, zs)
  np.testing.assert_array_equal(np.asarray(one), np.asarray(eight))


def test_bad_arguments_name_the_valid_values():
  z = jnp.zeros((16, 4))
  with pytest.raises(ValueError, match="valid: gaussian, self_tuning, cosine"):
    ops.random_walk_partners(jax.random.PRNGKey(0), z, affinity="rbf")
  with pytest.raises(ValueError, match="valid: walk, power"):
    ops.random_walk_partners(jax.random.PRNGKey(0), z, sampler="pow")
  with pytest.raises(ValueError, match="batch has 16 rows = 8 images"):
    ops.random_walk_partners(jax.random.PRNGKey(0), z, num_neighbors=15)
  with pytest.raises(ValueError, match="scale_k = 12"):
    ops.check_walk_args(num_neighbors=10, scale_k=12)
  with pytest.raises(ValueError, match="num_views = 3"):
    ops.random_walk_partners(jax.random.PRNGKey(0), z, num_views=3)
