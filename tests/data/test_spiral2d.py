import numpy as np

import ssljax.data
from ssljax.data import spiral2d


def test_curve_points_and_normals():
  theta = np.linspace(spiral2d.THETA_MIN, spiral2d.THETA_MAX, 200)
  points, normals = spiral2d.curve(theta)
  r = np.linalg.norm(points - 0.5, axis=1)
  np.testing.assert_allclose(r, spiral2d.RADIUS * theta / spiral2d.THETA_MAX)
  np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0)
  tangent = np.gradient(points, theta, axis=0)
  cos = np.sum(tangent * normals, 1) / np.linalg.norm(tangent, axis=1)
  assert np.abs(cos[1:-1]).max() < 1e-3  # normal ⟂ curve
  assert np.all(np.sum((points - 0.5) * normals, 1) > 0)  # outwards


def test_samples_are_deterministic_noisy_curve_points():
  a = [spiral2d.sample("train", i) for i in range(300)]
  b = [spiral2d.sample("train", i) for i in range(300)]
  assert all(np.array_equal(x[0], y[0]) for x, y in zip(a, b))
  assert not np.array_equal(a[0][0], spiral2d.sample("test", 0)[0])
  images = np.stack([s[0] for s in a])
  assert images.shape == (300, 1, 1, 3) and images.dtype == np.uint8
  assert np.all(images[..., 2] == 0)
  points = spiral2d.to_points(images)
  clean = spiral2d.curve(np.array([s[2] for s in a]))[0]
  err = points - clean  # noise + the 1/255 lattice
  assert abs(np.std(err) - np.hypot(spiral2d.NOISE, 1 / 255 / 12 ** .5)) \
      < 0.002
  labels = np.array([s[1] for s in a])
  theta = np.array([s[2] for s in a])
  assert set(labels) == {0, 1, 2, 3}
  assert np.all(np.diff(labels[np.argsort(theta)]) >= 0)  # curve quarters


def test_builder_splits(data_dir):
  train = ssljax.data.load_source("spiral2d", "train", data_dir)
  test = ssljax.data.load_source("spiral2d", "test", data_dir)
  assert (len(train), len(test)) == (2000, 1000)
  assert train[0]["image"].shape == (1, 1, 3)
  counts = np.bincount([train[i]["label"] for i in range(2000)])
  assert len(counts) == 4 and counts.min() > 400
