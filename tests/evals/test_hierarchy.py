import numpy as np
import pytest
from scipy import stats  # test oracle
from scipy.cluster import hierarchy as sch
from scipy.spatial import distance

from ssljax import evals


def test_rank_correlations_match_scipy_with_ties():
  rng = np.random.default_rng(0)
  for levels in (2, 3, 5):
    y = rng.integers(0, levels, 400)
    x = rng.integers(-15, 15, 400) + 4 * y  # many ties in x too
    assert float(evals.spearman(x, y)) == pytest.approx(
        stats.spearmanr(x, y).statistic, abs=1e-5)
    assert float(evals.kendall_tau_b(x, y, num_levels=levels)) == (
        pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-5))


def test_average_linkage_cophenetic_matches_scipy():
  rng = np.random.default_rng(1)
  pts = rng.normal(size=(17, 5))
  d = distance.squareform(distance.pdist(pts))
  want = distance.squareform(sch.cophenet(sch.linkage(
      distance.pdist(pts), "average")))
  np.testing.assert_allclose(np.asarray(evals.average_linkage(d)), want,
                             rtol=1e-5, atol=1e-6)


def test_tree_distance_two_and_three_levels():
  coarse = np.array([0, 0, 1, 1])
  assert evals.tree_distance([coarse]).tolist() == [
      [0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]]
  top = np.array([0, 0, 0, 0])
  mid = np.array([0, 0, 1, 2])
  t = evals.tree_distance([mid, top])
  assert t[0, 1] == 0 and t[0, 2] == 1 and t[2, 3] == 1


def _hierarchical_features(rng, noise, n_per=30):
  # 12 fine classes in 3 coarse groups: centroids = coarse + small offsets.
  coarse_mu = rng.normal(size=(3, 16)) * 6.0
  fine_mu = coarse_mu[np.arange(12) // 4] + rng.normal(size=(12, 16))
  fine = np.repeat(np.arange(12), n_per)
  return fine_mu[fine] + noise * rng.normal(size=(len(fine), 16)), fine


def test_hierarchy_rank_correlation_semantic_vs_random_and_scipy():
  rng = np.random.default_rng(2)
  x, fine = _hierarchical_features(rng, 0.5)
  coarse = fine // 4
  r = evals.hierarchy_rank_correlation(x, fine, coarse)
  mu = np.stack([x[fine == c].mean(0) for c in range(12)])
  iu = np.triu_indices(12, 1)
  e = distance.squareform(distance.pdist(mu))[iu]
  t = (coarse[::30][:, None] != coarse[::30][None])[iu].astype(float)
  assert r["spearman"] == pytest.approx(stats.spearmanr(e, t).statistic,
                                        abs=1e-5)
  assert r["kendall"] == pytest.approx(stats.kendalltau(e, t).statistic,
                                       abs=1e-5)
  assert r["cophenetic_correlation"] == pytest.approx(sch.cophenet(
      sch.linkage(distance.pdist(mu), "average"), distance.pdist(mu))[0],
                                                      abs=1e-5)
  # 0/1 tree distances cap ρ below 1: perfect separation here gives 0.77.
  assert r["spearman"] > 0.7 and r["tree_cophenetic_correlation"] > 0.9
  shuffled = fine[rng.permutation(len(fine))]  # random labels, same tree
  rr = evals.hierarchy_rank_correlation(x, shuffled, shuffled // 4)
  assert abs(rr["spearman"]) < 0.4


def test_non_nested_labels_are_refused():
  with pytest.raises(ValueError, match="not a tree"):
    evals.hierarchy_rank_correlation(np.zeros((4, 2)), [0, 0, 1, 1],
                                     [0, 1, 1, 1])
