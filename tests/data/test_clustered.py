import numpy as np
import pytest

from ssljax.data import clustered
from ssljax.data import pipeline as pl

LEVELS = (30, 90, 150, 210)  # four blobs of grey levels, 0 < 1 < 2 < 3


def _blobs(per_blob=50, seed=0):
  """In-memory source: 4×4 images of one noisy grey level each, label =
  blob, interleaved so that blob members are not contiguous."""
  rng = np.random.default_rng(seed)
  out = []
  for i in range(per_blob * len(LEVELS)):
    b = i % len(LEVELS)
    img = np.clip(LEVELS[b] + rng.normal(0, 6, (4, 4, 3)), 0, 255)
    out.append({"image": img.astype(np.uint8), "label": np.int64(b)})
  return out


CROPS = pl.Crops(num_global=1, global_size=4, global_scale=(1, 1),
                 ratio=(1, 1), flip=False)


def _iterator(src, clusters, batch=32, seed=0, **kw):
  return pl.train_iterator(src, global_batch=batch, crops=CROPS, seed=seed,
                           clusters=clusters, num_threads=2, **kw)


def test_kmeans_finds_the_blobs():
  src = _blobs()
  x = pl.cluster_features(src, 4)
  labels = np.array([e["label"] for e in src])
  assign, centres = clustered.kmeans(x, 4, seed=0)
  assert centres.shape == (4, 48)
  for c in range(4):  # each cluster is exactly one blob
    assert len(set(labels[assign == c])) == 1
  assert len(set(assign)) == 4


def test_pools_cluster_neighbours_and_top_up():
  src = _blobs()
  x = pl.cluster_features(src, 4)
  labels = np.array([e["label"] for e in src])
  alone = clustered.pools(x, clustered.Clusters(4, neighbours=0), 32)
  assert sorted(len(p) for p in alone) == [50] * 4
  assert all(len(set(labels[p])) == 1 for p in alone)
  with_next = clustered.pools(x, clustered.Clusters(4, neighbours=1), 32)
  for p in with_next:  # a blob and its nearest blob (adjacent grey level)
    blobs = sorted(set(labels[p]))
    assert len(blobs) == 2 and blobs[1] - blobs[0] == 1 and len(p) == 100
  topped = clustered.pools(x, clustered.Clusters(4, neighbours=0), 64)
  for p in topped:  # 50 members + the 14 nearest others, from adjacent blobs
    assert len(p) == 64 and len(set(p)) == 64
    counts = np.bincount(labels[p], minlength=4)
    own = int(counts.argmax())
    assert counts[own] == 50
    assert sum(counts[b] for b in range(4) if abs(b - own) == 1) == 14


def test_every_batch_comes_from_one_cluster():
  src = _blobs()
  it = _iterator(src, clustered.Clusters(4, neighbours=0), num_epochs=3)
  batches = list(it)
  assert len(batches) == 12  # 4 clusters a visit, 3 visits
  for e in range(3):  # every cluster once per epoch
    ids = [int(b["cluster"][0]) for b in batches[4 * e:4 * e + 4]]
    assert sorted(ids) == [0, 1, 2, 3]
  for b in batches:
    assert len(set(b["cluster"])) == 1
    assert len(set(b["label"])) == 1  # one blob per batch
    assert len(set(b["index"])) == 32  # drawn without replacement
    for img, i in zip(b["global"][:, 0], b["index"]):
      np.testing.assert_array_equal(img, src[int(i)]["image"])
  order = [int(b["cluster"][0]) for b in batches]
  assert order[:4] != order[4:8] or order[4:8] != order[8:]  # reshuffled


def test_deterministic_and_independent_of_process_count():
  src = _blobs()
  opt = clustered.Clusters(4, neighbours=1)
  a = [next(it) for it in [_iterator(src, opt, seed=3)] for _ in range(6)]
  b_it = _iterator(src, opt, seed=3)
  b = [next(b_it) for _ in range(6)]
  for x, y in zip(a, b):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  other = _iterator(src, opt, seed=4)
  assert not all(np.array_equal(next(other)["index"], x["index"])
                 for x in a[:3])
  halves = [_iterator(src, opt, seed=3, process_index=p, process_count=2)
            for p in range(2)]
  for want in a:
    got = [next(h) for h in halves]
    assert got[0]["index"].shape == (16,)
    np.testing.assert_array_equal(
        np.concatenate([g["index"] for g in got]), want["index"])
    np.testing.assert_array_equal(
        np.concatenate([g["global"] for g in got]), want["global"])


def test_resume_gives_the_same_batches():
  src = _blobs()
  opt = clustered.Clusters(4, neighbours=1)
  crops = pl.Crops(num_global=2, global_size=4, global_scale=(0.3, 1))
  make = lambda: pl.train_iterator(src, global_batch=16, crops=crops, seed=5,
                                   clusters=opt, num_threads=2)
  it = make()
  for _ in range(5):
    next(it)
  state = it.get_state()
  expected = [next(it) for _ in range(4)]
  resumed = make()
  resumed.set_state(state)
  for want in expected:
    got = next(resumed)
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])


def test_bad_options_are_refused_with_the_valid_values():
  with pytest.raises(ValueError, match="num_clusters = 0"):
    clustered.Clusters(0)
  with pytest.raises(ValueError, match=r"neighbours = 4: must be an integer "
                     r"in \[0, num_clusters − 1\]"):
    clustered.Clusters(4, neighbours=4)
  with pytest.raises(ValueError, match="valid: num_clusters, neighbours, "
                     "iters"):
    clustered.from_config({"cluster": {"num_clusters": 3, "neighbors": 1}})
  assert clustered.from_config({"cluster": {"num_clusters": 0}}) is None
  assert clustered.from_config({}) is None
  with pytest.raises(ValueError, match="fewer than one global batch"):
    clustered.pools(np.zeros((10, 2)), clustered.Clusters(2), 16)
  with pytest.raises(ValueError, match="1 ≤ k ≤ 10"):
    clustered.kmeans(np.zeros((10, 2)), 11)
