import jax
import ml_collections
import numpy as np
from PIL import Image
import pytest

from ssljax.data import pipeline as pl

CROPS = pl.Crops(global_size=16, num_local=3, local_size=8)


def _epoch(src, p, num_p, batch=100, seed=3):
  it = pl.train_iterator(src, global_batch=batch, crops=pl.Crops(
      global_size=8), seed=seed, process_index=p, process_count=num_p,
                         num_epochs=1)
  return [b["index"] for b in it]


def test_multicrop_batch_layout(shapes_train):
  batch = next(pl.train_iterator(shapes_train, global_batch=8, crops=CROPS))
  assert batch["global"].shape == (8, 2, 16, 16, 3)
  assert batch["local"].shape == (8, 3, 8, 8, 3)
  assert batch["global"].dtype == np.uint8
  assert batch["label"].dtype == np.int32
  np.testing.assert_array_equal(batch["coarse_label"], batch["label"] // 4)


def test_all_views_from_the_same_image(shapes_train):
  crops = pl.Crops(global_size=32, global_scale=(1, 1), num_local=2,
                   local_size=32, local_scale=(1, 1), ratio=(1, 1), flip=False)
  batch = next(pl.train_iterator(shapes_train, global_batch=4, crops=crops))
  for i, idx in enumerate(batch["index"]):
    src = shapes_train[int(idx)]["image"]
    for v in list(batch["global"][i]) + list(batch["local"][i]):
      np.testing.assert_array_equal(v, src)
    assert batch["label"][i] == shapes_train[int(idx)]["label"]


def test_two_processes_disjoint_and_cover_the_epoch(shapes_train):
  a = np.concatenate(_epoch(shapes_train, 0, 2))
  b = np.concatenate(_epoch(shapes_train, 1, 2))
  assert len(a) == len(b) == 500
  assert not set(a) & set(b)
  assert set(a) | set(b) == set(range(1000))


def test_global_stream_independent_of_process_count(shapes_train):
  one = _epoch(shapes_train, 0, 1)
  two = [_epoch(shapes_train, p, 2) for p in range(2)]
  assert len(one) == 10 and len(two[0]) == len(two[1]) == 10
  for step, batch in enumerate(one):
    joined = np.concatenate([two[0][step], two[1][step]])
    np.testing.assert_array_equal(batch, joined)  # same examples, same order


def test_new_permutation_each_epoch(shapes_train):
  it = pl.train_iterator(shapes_train, global_batch=100, seed=0, crops=pl.Crops(
      global_size=8))
  epochs = [np.concatenate([next(it)["index"] for _ in range(10)])
            for _ in range(2)]
  for e in epochs:
    np.testing.assert_array_equal(np.sort(e), np.arange(1000))
  assert not np.array_equal(epochs[0], epochs[1])
  other_seed = pl.train_iterator(shapes_train, global_batch=100, seed=1,
                                 crops=pl.Crops(global_size=8))
  assert not np.array_equal(next(other_seed)["index"], epochs[0][:100])


def test_iterator_state_restores_exactly(shapes_train):
  make = lambda: pl.train_iterator(shapes_train, global_batch=16, seed=5,
                                   crops=CROPS)
  it = make()
  for _ in range(3):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(3)]
  resumed = make()
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])


def test_worker_processes_give_the_same_batches(shapes_train):
  kw = dict(global_batch=16, seed=2, crops=CROPS)
  ref = pl.train_iterator(shapes_train, **kw)
  mp = pl.train_iterator(shapes_train, worker_count=2, **kw)
  for _ in range(3):
    want, got = next(ref), next(mp)
    np.testing.assert_array_equal(got["index"], want["index"])
    np.testing.assert_array_equal(got["local"], want["local"])


def test_batch_not_divisible_by_processes_is_an_error(shapes_train):
  with pytest.raises(ValueError, match="not divisible by the process count"):
    pl.train_iterator(shapes_train, global_batch=10, process_index=0,
                      process_count=4)


def test_eval_every_example_once_with_padding(shapes_train):
  seen, masked = [], 0
  for p in range(2):
    batches = list(pl.eval_iterator(shapes_train, global_batch=96,
                                    image_size=32, process_index=p,
                                    process_count=2))
    assert len(batches) == pl.num_eval_batches(1000, 96) == 11
    for b in batches:
      assert b["image"].shape == (48, 32, 32, 3)
      seen.extend(b["index"][b["mask"]])
      masked += (~b["mask"]).sum()
      assert (b["index"][~b["mask"]] == -1).all()
  assert sorted(seen) == list(range(1000))
  assert masked == 11 * 96 - 1000
  first = next(pl.eval_iterator(shapes_train, global_batch=8, image_size=32))
  np.testing.assert_array_equal(first["image"][3], shapes_train[3]["image"])


def test_center_crop_known_answer():
  img = np.zeros((64, 96, 3), np.uint8)
  img[16:48, 32:64] = 200  # the central 32x32 square
  out = pl.center_crop(img, 16, crop_fraction=0.5)
  assert out.shape == (16, 16, 3)
  assert (out == 200).all()


def test_crops_resize_as_torchvision_with_the_recipes_interpolation():
  # torchvision's resized_crop on a PIL image: crop, then resize.
  img = np.random.default_rng(0).integers(0, 256, (40, 50, 3), np.uint8)
  crop = Image.fromarray(img).crop((5, 3, 35, 24))  # box (3, 5, 21, 30)
  out = {}
  for name, mode in (("bilinear", Image.BILINEAR),
                     ("bicubic", Image.BICUBIC)):
    out[name] = pl._resize(img, 16, (3, 5, 21, 30), name)  # pylint: disable=protected-access
    np.testing.assert_array_equal(out[name],
                                  np.asarray(crop.resize((16, 16), mode)))
  assert not np.array_equal(out["bilinear"], out["bicubic"])
  d = ml_collections.ConfigDict({
      "num_global": 2, "image_size": 16, "global_scale": (0.1, 1),
      "num_local": 0, "local_size": 8, "local_scale": (0.1, 0.4)})
  assert pl.crops_from_config(d).interpolation == "bilinear"
  crops = pl.crops_from_config(ml_collections.ConfigDict(
      dict(d.to_dict(), interpolation="bicubic")))
  one = lambda c: pl.MultiCrop(c).random_map(
      (0, {"image": img, "label": 1}), np.random.default_rng(3))["global"]
  bilinear = pl.crops_from_config(d)
  assert not np.array_equal(one(crops), one(bilinear))  # passed through
  rng = np.random.default_rng(3)
  box = pl.crop_box(rng, 40, 50, (0.1, 1), (3 / 4, 4 / 3))
  want = pl._resize(img, 16, box, "bicubic")  # pylint: disable=protected-access
  if rng.random() < 0.5:
    want = want[:, ::-1]
  np.testing.assert_array_equal(one(crops)[0], want)


def test_crop_box_respects_scale_ratio_and_bounds():
  rng = np.random.default_rng(0)
  for _ in range(500):
    top, left, h, w = pl.crop_box(rng, 60, 80, (0.2, 0.6), (3 / 4, 4 / 3))
    assert 0 <= top and top + h <= 60 and 0 <= left and left + w <= 80
    assert 0.18 <= h * w / 4800 <= 0.62
    assert 0.7 <= w / h <= 1.4
  # Impossible request falls back to a centre crop clamped to the ratio.
  assert pl.crop_box(rng, 10, 100, (0.99, 1.0), (1, 1)) == (0, 45, 10, 10)


def test_to_global_shards_over_the_data_axis():
  devices = np.array(jax.devices())
  assert len(devices) == 8
  mesh = jax.sharding.Mesh(devices, ("data",))
  batch = {"x": np.arange(32 * 3).reshape(32, 3), "y": np.arange(32)}
  out = pl.to_global(batch, mesh)
  assert out["x"].shape == (32, 3)
  assert len(out["x"].sharding.device_set) == 8
  assert out["x"].addressable_shards[1].data.shape == (4, 3)
  np.testing.assert_array_equal(np.asarray(out["y"]), batch["y"])
