import numpy as np
import pytest
from scipy.cluster import hierarchy as sch  # test oracle
from scipy.spatial import distance
from sklearn import metrics  # test oracle

from ssljax import evals


def test_nmi_ari_match_sklearn():
  rng = np.random.default_rng(0)
  for _ in range(3):
    a = rng.integers(0, 7, 500)
    b = np.where(rng.random(500) < 0.6, a, rng.integers(0, 5, 500)) + 3
    assert evals.nmi(a, b) == pytest.approx(
        metrics.normalized_mutual_info_score(a, b), abs=1e-5)
    assert evals.ari(a, b) == pytest.approx(
        metrics.adjusted_rand_score(a, b), abs=1e-5)


def test_kmeans_recovers_separated_clusters():
  rng = np.random.default_rng(1)
  mu = rng.normal(size=(6, 10)) * 10
  y = rng.integers(0, 6, 600)
  x = mu[y] + rng.normal(size=(600, 10))
  r = evals.kmeans_scores(x, y)
  assert r["nmi"] == pytest.approx(1.0) and r["ari"] == pytest.approx(1.0)
  # inertia equals the within-cluster sum of squares of its assignment
  a, inertia = evals.kmeans(x, 6)
  wcss = sum(np.sum((x[a == k] - x[a == k].mean(0))**2) for k in range(6))
  assert inertia == pytest.approx(wcss, rel=1e-4)
  assert evals.kmeans_scores(x, evals.permute_labels(y))["nmi"] < 0.05


def test_rand_index_matches_sklearn_and_kmeans_reports_it():
  rng = np.random.default_rng(2)
  for _ in range(3):
    a = rng.integers(0, 6, 400)
    b = np.where(rng.random(400) < 0.5, a, rng.integers(0, 4, 400))
    assert evals.rand_index(a, b) == pytest.approx(
        metrics.rand_score(a, b), abs=1e-5)
  assert evals.rand_index(a, a) == 1.0
  x = rng.normal(size=(200, 4))
  r = evals.kmeans_scores(x, a[:200])
  assert r["ri"] == pytest.approx(metrics.rand_score(
      a[:200], evals.kmeans(x, 6)[0]), abs=1e-5)


def _same_partition(a, b):
  return metrics.adjusted_rand_score(a, b) == pytest.approx(1.0)


def test_average_linkage_cut_matches_scipy_fcluster():
  pts = np.random.default_rng(3).normal(size=(40, 5))
  z = sch.linkage(distance.pdist(pts), "average")
  d = distance.squareform(distance.pdist(pts))
  ks = (12, 5, 2, 1, 40)
  cuts = evals.average_linkage_cut(d, ks)  # one pass, any order
  for k, got in zip(ks, cuts):
    assert len(np.unique(got)) == k
    assert _same_partition(got, sch.fcluster(z, k, "maxclust"))
  np.testing.assert_array_equal(evals.average_linkage_cut(d, 5), cuts[1])
  with pytest.raises(ValueError, match="into .0. clusters"):
    evals.average_linkage_cut(d, 0)


def test_agglomerative_scores_per_level_on_nested_clusters():
  rng = np.random.default_rng(4)
  coarse_mu = rng.normal(size=(3, 8)) * 30
  fine_mu = coarse_mu[np.arange(9) // 3] + rng.normal(size=(9, 8)) * 6
  fine = np.repeat(np.arange(9), 40)
  x = fine_mu[fine] + rng.normal(size=(360, 8))
  r_fine, r_coarse = evals.agglomerative_scores(x, [fine, fine // 3])
  for r in (r_fine, r_coarse):
    assert r["ari"] == pytest.approx(1.0) and r["ri"] == pytest.approx(1.0)
  # each level has its own cut: the 9-cluster cut is no coarse clustering
  nine = evals.average_linkage_cut(
      np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), 9)
  assert _same_partition(nine, fine) and evals.ari(fine // 3, nine) < 0.6
  sub = evals.agglomerative_scores(x, fine // 3, max_points=100, seed=1)
  assert sub["points"] == 100 and sub["ari"] == pytest.approx(1.0)
  assert sub == evals.agglomerative_scores(x, fine // 3, max_points=100,
                                           seed=1)
  noise = evals.agglomerative_scores(rng.normal(size=(300, 8)), fine[:300])
  assert noise["ari"] < 0.1
