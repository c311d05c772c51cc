import numpy as np
import pytest

from ssljax import evals


def _brute_force_knn(train_x, train_y, test_x, k, temperature, num_classes):
  n = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
  sim = n(test_x) @ n(train_x).T
  pred = []
  for row in sim:
    idx = np.argsort(-row, kind="stable")[:k]
    votes = np.zeros(num_classes)
    np.add.at(votes, train_y[idx], np.exp(row[idx] / temperature))
    pred.append(np.argmax(votes))
  return np.array(pred)


def test_knn_matches_brute_force():
  rng = np.random.default_rng(0)
  centers = rng.normal(size=(5, 16))
  train_y = rng.integers(0, 5, 300)
  test_y = rng.integers(0, 5, 101)
  train_x = centers[train_y] + 1.5 * rng.normal(size=(300, 16))
  test_x = centers[test_y] + 1.5 * rng.normal(size=(101, 16))
  got = evals.knn_accuracy(train_x, train_y, test_x, test_y, k=(1, 10, 50),
                           temperature=0.1, chunk=32)
  for k, acc in got.items():
    want = np.mean(_brute_force_knn(train_x, train_y, test_x, k, 0.1, 5)
                   == test_y)
    assert acc == pytest.approx(want, abs=1e-9)
  assert 0.3 < got[10] < 1.0


def test_linear_probe_matches_sklearn():
  from sklearn.datasets import make_classification  # test oracle
  from sklearn.linear_model import LogisticRegression
  from sklearn.preprocessing import StandardScaler
  x, y = make_classification(1500, 32, n_informative=12, n_classes=4,
                             random_state=0)
  xtr, ytr, xte, yte = x[:1000], y[:1000], x[1000:], y[1000:]
  ours = evals.linear_probe(xtr, ytr, xte, yte)
  scaler = StandardScaler().fit(xtr)
  ref = LogisticRegression(max_iter=2000).fit(scaler.transform(xtr), ytr)
  assert ours["test_accuracy"] >= ref.score(scaler.transform(xte), yte) - 0.02
  assert set(ours) >= {"test_accuracy", "train_accuracy", "l2"}
