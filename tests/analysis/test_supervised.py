import numpy as np
import pytest

from ssljax.analysis import supervised


def _bars(n, seed):
  """Class = horizontal stripes, vertical stripes or a checkerboard (any
  phase), in noise: local patterns that a pooled CNN can read."""
  rng = np.random.default_rng(seed)
  y = rng.integers(3, size=n)
  i, j = np.mgrid[:12, :12]
  x = rng.normal(0, 0.5, (n, 12, 12, 1)).astype(np.float32)
  for k, c in enumerate(y):
    ph = rng.integers(2)
    pattern = [(i + ph) % 2, (j + ph) % 2, (i + j + ph) % 2][c]
    x[k, ..., 0] += 2.0 * pattern
  return x, y


def test_learns_a_separable_task_and_not_shuffled_labels():
  x, y = _bars(384, 0)
  xt, yt = _bars(200, 1)
  kw = dict(width=8, epochs=4, batch_size=64, shift=0)
  assert supervised.train_classifier(x, y, xt, yt, **kw) > 0.9
  rng = np.random.default_rng(2)
  shuffled = supervised.train_classifier(x, rng.permutation(y), xt, yt, **kw)
  assert shuffled < 0.6


def test_bad_arch_and_batch_are_refused():
  x, y = _bars(16, 0)
  with pytest.raises(ValueError, match="valid: convnet, resnet18"):
    supervised.train_classifier(x, y, x, y, arch="vgg")
  with pytest.raises(ValueError, match="exceeds the 16 training examples"):
    supervised.train_classifier(x, y, x, y, batch_size=32)
