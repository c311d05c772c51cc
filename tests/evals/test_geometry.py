import jax
import numpy as np
import pytest

from ssljax import evals


def _gaussian_classes(rng, c, n_per, d, sigma, spread):
  mu = rng.normal(size=(c, d)) * spread
  y = np.repeat(np.arange(c), n_per)
  return mu[y] + sigma * rng.normal(size=(c * n_per, d)), y, mu


def test_cdnv_isotropic_gaussians_known_answer():
  # Two classes, per-coordinate variance σ² in d dims: CDNV = dσ²/‖Δμ‖².
  rng = np.random.default_rng(0)
  d, sigma, n = 64, 0.5, 20000
  mu = np.zeros((2, d))
  mu[1, 0] = 8.0
  y = np.repeat([0, 1], n)
  x = mu[y] + sigma * rng.normal(size=(2 * n, d))
  assert evals.cdnv(x, y) == pytest.approx(d * sigma**2 / 64.0, rel=0.02)


def test_cdnv_matches_definition_with_absent_class():
  rng = np.random.default_rng(1)
  x, y, _ = _gaussian_classes(rng, 5, 30, 8, 1.0, 2.0)
  y = np.where(y == 2, 4, y)  # class 2 absent, class 4 bigger
  mus = {c: x[y == c].mean(0) for c in np.unique(y)}
  var = {c: np.mean(np.sum((x[y == c] - mus[c])**2, 1)) for c in mus}
  cs = sorted(mus)
  want = np.mean([(var[i] + var[j]) / (2 * np.sum((mus[i] - mus[j])**2))
                  for a, i in enumerate(cs) for j in cs[a + 1:]])
  assert evals.cdnv(x, y, num_classes=6) == pytest.approx(want, rel=1e-4)


def test_ncc_separated_clusters_and_brute_force():
  rng = np.random.default_rng(2)
  x, y, _ = _gaussian_classes(rng, 10, 40, 16, 0.1, 5.0)
  assert evals.ncc_accuracy(x, y, x, y) == 1.0
  # Overlapping classes: against an explicit nearest-mean loop.
  xtr, ytr, mu = _gaussian_classes(rng, 6, 50, 8, 2.0, 1.0)
  yte = rng.integers(0, 6, 200)
  xte = mu[yte] + 2.0 * rng.normal(size=(200, 8))
  for normalize in (False, True):
    f = (lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)
         ) if normalize else (lambda v: v)
    means = np.stack([f(xtr)[ytr == c].mean(0) for c in range(6)])
    pred = np.argmin(((f(xte)[:, None] - means[None])**2).sum(-1), 1)
    got = evals.ncc_accuracy(xtr, ytr, xte, yte, normalize=normalize)
    assert got == pytest.approx(np.mean(pred == yte), abs=1e-9)
    assert 0.3 < got < 1.0


def test_random_labels_control_is_near_chance():
  rng = np.random.default_rng(3)
  x, y, _ = _gaussian_classes(rng, 10, 100, 16, 0.5, 3.0)
  xte, yte, _ = x[1::2], y[1::2], None
  x, y = x[::2], y[::2]
  yr, yter = evals.permute_labels(y, 1), evals.permute_labels(yte, 2)
  assert np.array_equal(np.sort(yr), np.sort(y))
  assert evals.ncc_accuracy(x, y, xte, yte) > 0.95
  assert evals.ncc_accuracy(x, yr, xte, yter) < 0.25
  assert evals.cdnv(x, yr) > 20 * evals.cdnv(x, y)


def test_rankme_known_spectra():
  rng = np.random.default_rng(4)
  q, _ = np.linalg.qr(rng.normal(size=(200, 8)))
  assert evals.rankme(q * 3.0) == pytest.approx(8.0, rel=1e-4)  # flat
  assert evals.rankme(np.outer(rng.normal(size=50), rng.normal(size=16))
                      ) == pytest.approx(1.0, abs=1e-3)  # collapsed
  x = rng.normal(size=(30, 100))  # n < d uses the n×n Gram
  s = np.linalg.svd(x, compute_uv=False)
  p = s / s.sum() + 1e-7
  assert evals.rankme(x) == pytest.approx(np.exp(-np.sum(p * np.log(p))),
                                          rel=1e-4)


def test_sharded_inputs_give_identical_results():
  rng = np.random.default_rng(5)
  xtr, ytr, mu = _gaussian_classes(rng, 8, 64, 16, 1.5, 1.0)
  yte = rng.integers(0, 8, 256)
  xte = mu[yte] + 1.5 * rng.normal(size=(256, 16))
  mesh = jax.sharding.Mesh(np.asarray(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  put = lambda a: jax.device_put(np.asarray(a), shard)
  plain = (evals.ncc_accuracy(xtr, ytr, xte, yte), evals.cdnv(xtr, ytr),
           evals.knn_accuracy(xtr, ytr, xte, yte, k=10))
  sharded = (evals.ncc_accuracy(put(xtr), put(ytr), put(xte), put(yte)),
             evals.cdnv(put(xtr), put(ytr)),
             evals.knn_accuracy(put(xtr), put(ytr), put(xte), put(yte), k=10))
  assert sharded[0] == plain[0] and sharded[2] == plain[2]
  assert sharded[1] == pytest.approx(plain[1], rel=1e-5)
