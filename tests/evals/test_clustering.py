import numpy as np
import pytest
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
