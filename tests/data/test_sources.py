import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

import ssljax.data
from ssljax.data import mnist5k
from ssljax.data import pipeline


def test_mock_tfds_cifar100_through_pipeline():
  with tfds.testing.mock_data(num_examples=24,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    src = ssljax.data.load_source("cifar100", "train")
    assert len(src) == 24
    ex = src[0]
    assert ex["image"].shape == (32, 32, 3)
    assert {"label", "coarse_label"} <= set(ex)
    it = pipeline.train_iterator(src, global_batch=8, seed=0,
                                 crops=pipeline.Crops(global_size=16))
    batch = next(it)
    assert batch["global"].shape == (8, 2, 16, 16, 3)
    assert batch["coarse_label"].shape == (8,)


def test_unknown_name_lists_valid_ones():
  with pytest.raises(ssljax.data.DatasetError) as e:
    ssljax.data.load_source("cifar_100", "train")
  msg = str(e.value)
  assert "cifar100" in msg and "hierarchical_shapes" in msg


def test_unprepared_dataset_says_how_to_prepare(tmp_path):
  with pytest.raises(ssljax.data.DatasetError, match="tfds build cifar10"):
    ssljax.data.load_source("cifar10", "train", str(tmp_path))


def test_missing_data_dir(tmp_path):
  with pytest.raises(ssljax.data.DatasetError, match="does not exist"):
    ssljax.data.load_source("cifar10", "train", str(tmp_path / "nope"))


def test_unknown_split_lists_splits(data_dir):
  with pytest.raises(ssljax.data.DatasetError, match="train, test"):
    ssljax.data.load_source("mnist5k", "validation", data_dir)


def test_plain_tfds_data_source_finds_our_builders(data_dir):
  src = tfds.data_source("hierarchical_shapes/32_small", split="test",
                         data_dir=data_dir)
  assert len(src) == 200


def test_mnist5k_split_and_images(data_dir):
  train = ssljax.data.load_source("mnist5k", "train", data_dir)
  test = ssljax.data.load_source("mnist5k", "test", data_dir)
  assert (len(train), len(test)) == (4000, 1000)
  labels = np.array([test[i]["label"] for i in range(len(test))])
  np.testing.assert_array_equal(np.bincount(labels), [100] * 10)
  img = test[0]["image"]
  assert img.shape == (32, 32, 3)
  assert (img[:2] == 0).all() and (img[..., 0] == img[..., 2]).all()
  x, y = mnist5k.load_arrays()
  split = mnist5k.split_indices(y)
  assert not set(split["train"]) & set(split["test"])
  assert len(set(split["train"]) | set(split["test"])) == len(y)


def test_nothing_imports_tensorflow(data_dir):
  code = (
      "import sys, ssljax.data as d\n"
      "from ssljax.data import pipeline as p\n"
      f"s = d.load_source('hierarchical_shapes/32_small', 'test', {data_dir!r})\n"
      "next(p.train_iterator(s, global_batch=4, crops=p.Crops(global_size=8)))\n"
      "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
  subprocess.run([sys.executable, "-c", code], check=True)


def test_in_memory_source_keeps_examples_and_info():
  class _Src(list):
    dataset_info = "info"

  src = _Src({"image": np.full((2, 2, 3), i, np.uint8), "label": i}
             for i in range(5))
  mem = ssljax.data.InMemory(src)
  assert len(mem) == 5 and mem.dataset_info == "info"
  assert mem[3] is src[3]
  batch = next(pipeline.train_iterator(mem, global_batch=4, seed=0,
                                       crops=pipeline.Crops(global_size=2)))
  assert batch["global"].shape == (4, 2, 2, 2, 3)
