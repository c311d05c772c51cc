import numpy as np
import pytest
from scipy import stats  # test oracle
from scipy.spatial import distance

from ssljax import evals


def sgs_reference(x, times=(1, 2, 4, 8, 16)):
  """The module docstring's definition in float64 numpy and scipy."""
  d2 = distance.squareform(distance.pdist(x, "sqeuclidean"))
  iu = np.triu_indices(len(x), 1)
  k = np.exp(-d2 / np.median(d2[iu]))
  deg = k.sum(1)
  lam, u = np.linalg.eigh(k / np.sqrt(deg[:, None] * deg[None]))
  phi, lam = u[:, :-1] / np.sqrt(deg)[:, None], lam[:-1]
  return [stats.spearmanr(d2[iu], distance.pdist(phi * lam**t))[0]
          for t in times]


def clusters(rng, kind, groups=4, per_group=4, d=32, n_per=25):
  """16 Gaussian clusters. "nested": centroids = 4 group centres + small
  offsets; "shuffled": the same centroid matrix with each coordinate
  permuted across clusters (same marginal spread, no groups);
  "equidistant": centroids on orthogonal axes."""
  c = groups * per_group
  if kind == "equidistant":
    mu = np.eye(d)[:c] * 8.0
  else:
    centres = rng.normal(size=(groups, d)) * 6.0
    mu = centres[np.arange(c) // per_group] + 2.0 * rng.normal(size=(c, d))
    if kind == "shuffled":
      mu = np.stack([rng.permutation(mu[:, j]) for j in range(d)], 1)
  y = np.repeat(np.arange(c), n_per)
  return (mu[y] + 0.5 * rng.normal(size=(len(y), d))).astype(np.float32)


def test_matches_the_definition():
  x = clusters(np.random.default_rng(0), "nested", n_per=8)
  got = evals.spectral_global_structure(x)
  want = sgs_reference(x.astype(np.float64))
  for t, w in zip((1, 2, 4, 8, 16), want):
    assert got[f"sgs_t{t}"] == pytest.approx(w, abs=5e-3)
  assert got["sgs"] == pytest.approx(np.mean(want), abs=5e-3)
  assert got["points"] == len(x)


def test_nested_clusters_rank_above_shuffled_and_equidistant():
  score = {k: [evals.spectral_global_structure(
      clusters(np.random.default_rng(s), k))["sgs"] for s in range(3)]
           for k in ("nested", "shuffled", "equidistant")}
  # every structured draw above every unstructured one, with a margin
  assert min(score["nested"]) > max(score["shuffled"]) + 0.05, score
  assert min(score["nested"]) > max(score["equidistant"]) + 0.1, score


def test_invariant_to_rotation_scale_translation_and_subsampled():
  rng = np.random.default_rng(1)
  x = clusters(rng, "nested", n_per=10)
  q, _ = np.linalg.qr(rng.normal(size=(32, 32)))
  y = (3.0 * x @ q + 5.0).astype(np.float32)
  a = evals.spectral_global_structure(x)["sgs"]
  assert evals.spectral_global_structure(y)["sgs"] == pytest.approx(a,
                                                                     abs=2e-3)
  sub = evals.spectral_global_structure(x, max_points=100, seed=3)
  assert sub["points"] == 100
  assert sub == evals.spectral_global_structure(x, max_points=100, seed=3)
  with pytest.raises(ValueError, match="at least 3 points"):
    evals.spectral_global_structure(x[:2])
