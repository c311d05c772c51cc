"""Host input pipeline: grain over a random-access source, to global jax.Arrays.

Training: global shuffle (new permutation each epoch, seeded), each process
a disjoint block of every global batch, multi-crop on the host (random-resized crop + flip; colour
and blur run on device, see `ssljax.data.augment`), per-host batching. The
returned grain iterator has `get_state()`/`set_state()` for checkpoints.
Option: clustered mini-batches (`clusters=`), every batch drawn from one
k-means cluster of the training set and its nearest clusters
(`ssljax.data.clustered`), equally deterministic and resumable.

Evaluation: deterministic resize + centre crop, no shuffle, every example
exactly once; the last batch is padded and carries `mask == False` on padding.

Batches are dicts of numpy arrays, per host:
  train: "global" uint8 [b, G_views, G, G, 3], "local" uint8 [b, L_views, L, L, 3]
         (absent when there are no local views), the source's label fields
         (int32 [b]), "index" int64 [b] (position of the example in the split).
         Clustered batches also carry "cluster" int32 [b] (the pool drawn).
  eval:  "image" uint8 [b, S, S, 3], labels, "index", "mask" bool [b].
"""

import dataclasses
import math
from typing import Sequence

from absl import flags
import grain
import jax
import numpy as np
from PIL import Image

from ssljax import ops
from ssljax.data import clustered
from ssljax.data.clustered import Clusters  # pylint: disable=unused-import

LABEL_KEYS = ("label", "coarse_label")


@dataclasses.dataclass(frozen=True)
class Crops:
  """Multi-crop recipe. Defaults: two global crops at 224 px, no local crops.

  MVEB / DINO-style multi-crop: `Crops(2, 224, (0.4, 1.0), 6, 96, (0.05, 0.4))`.
  Scales are fractions of the source image area (torchvision semantics);
  aspect ratios are drawn log-uniformly in `ratio`.
  """
  num_global: int = 2
  global_size: int = 224
  global_scale: tuple[float, float] = (0.08, 1.0)
  num_local: int = 0
  local_size: int = 96
  local_scale: tuple[float, float] = (0.05, 0.4)
  ratio: tuple[float, float] = (3 / 4, 4 / 3)
  flip: bool = True
  # PIL's resampling of the crops: "bilinear" (torchvision's default) or
  # "bicubic" (the official VICReg, Barlow Twins, BYOL, SimCLR and MVEB
  # transforms).
  interpolation: str = "bilinear"


def crops_from_config(d):
  """The `Crops` of a config's `data` block."""
  return Crops(num_global=d.num_global, global_size=d.image_size,
               global_scale=tuple(d.global_scale), num_local=d.num_local,
               local_size=d.local_size, local_scale=tuple(d.local_scale),
               flip=d.get("flip", True),
               interpolation=d.get("interpolation", "bilinear"))


# ----------------------------------------------------------------------------
# Host-side image ops (numpy + PIL; resampling in C, antialiased).
# ----------------------------------------------------------------------------
def crop_box(rng, height, width, scale, ratio):
  """torchvision RandomResizedCrop box (top, left, h, w): 10 tries, then a
  centre crop clamped to `ratio`."""
  area = height * width
  log_ratio = np.log(ratio)
  for _ in range(10):
    target = area * rng.uniform(*scale)
    aspect = math.exp(rng.uniform(*log_ratio))
    w = int(round(math.sqrt(target * aspect)))
    h = int(round(math.sqrt(target / aspect)))
    if 0 < w <= width and 0 < h <= height:
      return int(rng.integers(0, height - h + 1)), int(
          rng.integers(0, width - w + 1)), h, w
  in_ratio = width / height
  if in_ratio < ratio[0]:
    w, h = width, int(round(width / ratio[0]))
  elif in_ratio > ratio[1]:
    h, w = height, int(round(height * ratio[1]))
  else:
    w, h = width, height
  return (height - h) // 2, (width - w) // 2, h, w


INTERPOLATIONS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def _resize(image, size, box=None, interpolation="bilinear"):
  """Crops `box` (top, left, h, w) of a uint8 array or PIL image and
  resizes to size×size (torchvision's resized_crop on a PIL image: the
  same two PIL calls)."""
  pil = image if isinstance(image, Image.Image) else Image.fromarray(image)
  if box is not None:
    top, left, h, w = box
    pil = pil.crop((left, top, left + w, top + h))
  if pil.size != (size, size):
    pil = pil.resize((size, size), INTERPOLATIONS[interpolation])
  return np.asarray(pil)


def _rgb(image):
  return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def random_resized_crop(image, rng, size, scale, ratio=(3 / 4, 4 / 3),
                        flip=True, interpolation="bilinear"):
  """One random-resized crop of a uint8 H×W×3 image (array or PIL image),
  flipped w.p. 1/2."""
  hw = (image.size[1], image.size[0]) if isinstance(
      image, Image.Image) else image.shape[:2]
  out = _resize(image, size, crop_box(rng, *hw, scale, ratio), interpolation)
  if flip and rng.random() < 0.5:
    out = out[:, ::-1]
  return out


def center_crop(image, size, crop_fraction=1.0):
  """Resize so the shorter side is size/crop_fraction, centre crop size×size."""
  h, w = image.shape[:2]
  side = min(h, w) * crop_fraction  # source pixels that map onto the crop
  top, left = (h - side) / 2, (w - side) / 2
  box = (int(round(top)), int(round(left)), int(round(side)), int(round(side)))
  return _resize(image, size, box)


def _labels(example, keys):
  return {k: np.int32(example[k]) for k in keys if k in example}


class MultiCrop(grain.transforms.RandomMap):
  """All views of an example come from the same decoded image."""

  def __init__(self, crops: Crops, label_keys: Sequence[str] = LABEL_KEYS):
    self.crops, self.label_keys = crops, tuple(label_keys)

  def random_map(self, element, rng):
    index, example = element
    # One PIL image for all views: converting the array costs about as much
    # as a crop of an ImageNet-sized image.
    c, image = self.crops, Image.fromarray(_rgb(example["image"]))
    out = _labels(example, self.label_keys)
    out["index"] = np.int64(index)
    out["global"] = np.stack([
        random_resized_crop(image, rng, c.global_size, c.global_scale,
                            c.ratio, c.flip, c.interpolation)
        for _ in range(c.num_global)])
    if c.num_local:
      out["local"] = np.stack([
          random_resized_crop(image, rng, c.local_size, c.local_scale,
                              c.ratio, c.flip, c.interpolation)
          for _ in range(c.num_local)])
    return out


# ----------------------------------------------------------------------------
# Held-out classes.
# ----------------------------------------------------------------------------
class Subset:
  """Random-access view of `source` at `indices` (dataset_info passes
  through, so class counts still come from the full dataset's features)."""

  def __init__(self, source, indices):
    self.source, self.indices = source, np.asarray(indices, np.int64)
    self.dataset_info = getattr(source, "dataset_info", None)

  def __len__(self):
    return len(self.indices)

  def __getitem__(self, i):
    return self.source[int(self.indices[i])]


def exclude_classes(source, classes, *, key="label", labels=None):
  """`source` without the examples whose `key` label is in `classes`.

  The kept examples stay in source order, so the result depends only on
  (source, key, classes): shuffling, resumption and multi-process sharding
  then work on it as on any source. `labels` ([len(source)] ints, e.g. from
  `ssljax.data.load_labels`) spares reading every example here.
  """
  if labels is None:
    first = source[0] if len(source) else {}
    if key not in first:
      raise ValueError(f"Cannot hold out classes of {key!r}: the examples "
                       f"have the fields {', '.join(sorted(first))}.")
    labels = [source[i][key] for i in range(len(source))]
  labels = np.asarray(labels)
  if len(labels) != len(source):
    raise ValueError(f"{len(labels)} labels for {len(source)} examples.")
  keep = np.flatnonzero(~np.isin(labels, np.asarray(classes, np.int64)))
  return Subset(source, keep)


# ----------------------------------------------------------------------------
# Iterators.
# ----------------------------------------------------------------------------
def _process(process_index, process_count):
  if process_index is None:
    process_index = jax.process_index()
  if process_count is None:
    process_count = jax.process_count()
  return process_index, process_count


def host_batch_size(global_batch, process_count):
  if global_batch % process_count:
    raise ValueError(
        f"Global batch {global_batch} is not divisible by the process count "
        f"{process_count}; choose a multiple of {process_count}.")
  return global_batch // process_count


def train_iterator(source, *, global_batch, crops=Crops(), seed=0,
                   num_epochs=None, label_keys=LABEL_KEYS, worker_count=0,
                   num_threads=4, prefetch=8, process_index=None,
                   process_count=None, clusters=None):
  """Infinite (or `num_epochs`) iterator of per-host multi-crop batches.

  The global stream is the split shuffled anew each epoch (seeded), repeated;
  example j of the stream and its crops depend only on (seed, j). Global
  batch b is stream positions [b·B, (b+1)·B) in order, and process p yields
  the p-th block of B/P of them, so the global array assembled from the
  processes' blocks is the same for every process count (and the same
  on-device augmentation draws follow). Batches may straddle epochs.

  Args:
    source: random-access source (`load_source(...)` or any sequence of dicts
      with "image" uint8 H×W×{1,3}).
    global_batch: examples per step summed over processes.
    crops: the multi-crop recipe.
    seed: shuffle and crop seed.
    num_epochs: None repeats forever.
    label_keys: fields copied through when present.
    worker_count: grain worker processes (0: in-process threads only).
    num_threads: reader threads per process / worker (each builds a batch).
    prefetch: batches buffered by the reader threads.
    process_index, process_count: default to jax.process_index()/count().
    clusters: None, or a `Clusters` option: then every global batch is
      drawn from one cluster's pool instead (see `clustered_batches`); an
      epoch (for `num_epochs`) is one visit of every cluster.

  Returns:
    A grain DatasetIterator (`next(it)` -> batch dict; `get_state()`,
    `set_state(state)` for exact resumption).
  """
  p, num_p = _process(process_index, process_count)
  batch = host_batch_size(global_batch, num_p)
  n = len(source)
  if n < global_batch:
    raise ValueError(f"The split has {n} examples, fewer than one global "
                     f"batch ({global_batch}); lower the batch size.")
  if clusters is not None:
    ds = clustered_batches(source, clusters, global_batch=global_batch,
                           crops=crops, seed=seed, num_epochs=num_epochs,
                           label_keys=label_keys, process_index=p,
                           process_count=num_p)
  else:
    # Indices past the first epoch wrap around: i % n is the example's index.
    ds = grain.MapDataset.source(source).map_with_index(
        lambda i, x: (i % n, x))
    ds = ds.shuffle(seed=seed).random_map(MultiCrop(crops, label_keys),
                                          seed=seed)
    # Batching the MapDataset makes each batch a fixed set of stream
    # positions, so the output does not depend on the number of threads or
    # workers.
    ds = ds.repeat(num_epochs).batch(batch, drop_remainder=True)
    stop = None if num_epochs is None else len(ds) - len(ds) % num_p
    ds = ds[p:stop:num_p]
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch)
  it = ds.to_iter_dataset(read)
  if worker_count > 0:
    # Grain's workers read absl flags; outside app.run (notebooks, tests)
    # nothing parsed them, so take the defaults.
    if not flags.FLAGS.is_parsed():
      flags.FLAGS.mark_as_parsed()
    it = it.mp_prefetch(grain.MultiprocessingOptions(num_workers=worker_count))
  return iter(it)


def cluster_features(source, size):
  """float32 [n, size·size·3] of every example centre-cropped to size px,
  in [0, 1]: what the clusters are computed on."""
  return np.stack([center_crop(_rgb(source[i]["image"]), size).reshape(-1)
                   for i in range(len(source))]).astype(np.float32) / 255.0


class _ClusterBatch(grain.transforms.MapWithIndex):
  """(global batch b, cluster c) -> this process' block of batch b."""

  def __init__(self, source, pools, global_batch, crops, seed, label_keys,
               process_index, process_count):
    self.source, self.pools, self.global_batch = source, pools, global_batch
    self.crop = MultiCrop(crops, label_keys)
    self.seed = seed
    self.host = global_batch // process_count
    self.first = process_index * self.host

  def map_with_index(self, index, element):
    c = int(element)
    # The whole global batch is drawn on every process, then each keeps its
    # block: the global array is the same for any process count.
    rng = np.random.default_rng([self.seed, index])
    chosen = rng.choice(self.pools[c], self.global_batch, replace=False)
    out = []
    for slot in range(self.first, self.first + self.host):
      i = int(chosen[slot])
      ex = self.crop.random_map(
          (i, self.source[i]), np.random.default_rng([self.seed, index, slot]))
      ex["cluster"] = np.int32(c)
      out.append(ex)
    return {k: np.stack([ex[k] for ex in out]) for k in out[0]}


def clustered_batches(source, clusters, *, global_batch, crops, seed,
                      num_epochs, label_keys, process_index, process_count):
  """MapDataset of this process' batches, each from one cluster's pool.

  Pools: `clustered.pools` of `cluster_features(source, crops.global_size)`
  (k-means seeded with `seed`), each ≥ global_batch examples. Epoch e visits
  the clusters in a seeded permutation, new each epoch; global batch b is
  `global_batch` distinct examples drawn uniformly from its cluster's pool
  with the rng (seed, b), and slot s of it is cropped with the rng (seed, b,
  s). Batch b therefore depends only on (seed, b): the same for any process
  count, thread or worker count, and resumable from the batch position.
  """
  pools = clustered.pools(cluster_features(source, crops.global_size),
                          clusters, global_batch, seed)
  ds = grain.MapDataset.range(len(pools)).shuffle(seed=seed)
  return ds.repeat(num_epochs).map_with_index(_ClusterBatch(
      source, pools, global_batch, crops, seed, label_keys, process_index,
      process_count))


class _EvalExample(grain.transforms.Map):
  """Index -> centre-cropped example; indices past the split are padding."""

  def __init__(self, source, size, crop_fraction, label_keys):
    self.source, self.size = source, size
    self.crop_fraction, self.label_keys = crop_fraction, tuple(label_keys)
    self.labels = _labels(source[0], self.label_keys)

  def map(self, index):
    if index >= len(self.source):
      out = {k: np.int32(0) for k in self.labels}
      out["image"] = np.zeros((self.size, self.size, 3), np.uint8)
      out.update(index=np.int64(-1), mask=np.bool_(False))
      return out
    example = self.source[index]
    out = _labels(example, self.label_keys)
    out["image"] = center_crop(_rgb(example["image"]), self.size,
                               self.crop_fraction)
    out.update(index=np.int64(index), mask=np.bool_(True))
    return out


def eval_iterator(source, *, global_batch, image_size, crop_fraction=1.0,
                  label_keys=LABEL_KEYS, num_threads=4, process_index=None,
                  process_count=None):
  """One pass over `source` in order, every example exactly once.

  The split is padded up to a whole number of global batches; all processes
  yield the same number of batches (so collective steps stay in lockstep).
  `crop_fraction` is the centre crop's share of the shorter side (0.875 is the
  ImageNet convention; 1.0 keeps the whole image, for 32 px datasets).
  """
  p, num_p = _process(process_index, process_count)
  batch = host_batch_size(global_batch, num_p)
  num_batches = num_eval_batches(len(source), global_batch)
  ds = grain.MapDataset.range(num_batches * global_batch)[p::num_p]
  ds = ds.map(_EvalExample(source, image_size, crop_fraction, label_keys))
  read = grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=8)
  return iter(ds.batch(batch).to_iter_dataset(read))


def num_eval_batches(num_examples, global_batch):
  return -(-num_examples // global_batch)


# ----------------------------------------------------------------------------
# Host batches -> global jax.Arrays.
# ----------------------------------------------------------------------------
def make_mesh(devices=None, fsdp=1):
  """Mesh over `devices` (default: all): 1-D with the batch axis "data",
  or with fsdp > 1 two axes "data" × "fsdp" (fsdp consecutive devices per
  row: parameters and optimizer state are split along "fsdp", the batch
  along both; ssljax.train_state.state_shardings)."""
  devices = np.asarray(devices if devices is not None else jax.devices())
  devices = devices.reshape(-1)
  if fsdp == 1:
    return jax.sharding.Mesh(devices, ("data",))
  if fsdp < 1 or devices.size % fsdp:
    raise ValueError(f"mesh.fsdp = {fsdp} must divide the {devices.size} "
                     "devices; use a divisor of the device count (1: pure "
                     "data parallelism).")
  return jax.sharding.Mesh(devices.reshape(-1, fsdp), ("data", "fsdp"))


def to_global(batch, mesh):
  """Per-host numpy batch -> global jax.Arrays sharded on dim 0 over every
  axis of `mesh` (the global batch is the concatenation over hosts)."""
  sharding = jax.sharding.NamedSharding(mesh, ops.batch_spec(mesh))
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(sharding, x), batch)
