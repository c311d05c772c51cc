"""Helpers shared by the benchmark scripts (run as `python
benchmarks/NAME.py`, so this folder is on sys.path)."""

import time

import jax
import numpy as np

from ssljax import models
from ssljax import train_step


def call_times(fn, calls, warmup):
  """Seconds of each of `calls` calls of fn after `warmup` untimed ones; fn
  must block until its work is done."""
  for _ in range(warmup):
    fn()
  times = []
  for _ in range(calls):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return times


def median_ms(fn, steps, warmup):
  """Median ms of `steps` calls of fn after `warmup` untimed ones."""
  return 1e3 * float(np.median(call_times(fn, steps, warmup)))


def synthetic_batch(cfg, n, num_classes):
  """A host batch of uniform uint8 views in cfg.data's layout and integer
  labels below num_classes for every label key the train step reads."""
  rng = np.random.default_rng(0)
  d = cfg.data
  b = {"global": rng.integers(
      0, 256, (n, d.num_global, d.image_size, d.image_size, 3), np.uint8)}
  if d.num_local:
    b["local"] = rng.integers(
        0, 256, (n, d.num_local, d.local_size, d.local_size, 3), np.uint8)
  for k in train_step.label_keys(cfg):
    b[k] = rng.integers(0, num_classes, (n,), np.int32)
  return b


def iterator_rate(it, batch, seconds, warmup):
  """Examples/s of next(it) (batches of `batch`) over `seconds`, after
  `warmup` untimed batches."""
  for _ in range(warmup):
    next(it)
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < seconds:
    next(it)
    n += batch
  return n / (time.perf_counter() - t0)


def best_time(fn, repeats):
  """Seconds of the fastest of `repeats` calls of fn, after one warm-up
  call (compilation). fn must block until its result is ready."""
  return min(call_times(fn, repeats, 1))


def trunk_loss(c):
  """(loss(params, x) -> (sum of the representation, new BN stats), params,
  x): the encoder of config `c` alone on one view of its batch (random
  float32 images), train-mode BatchNorm."""
  size = c.data.image_size
  x = np.random.default_rng(1).standard_normal(
      (c.batch_size, size, size, 3)).astype(np.float32)
  enc = models.from_config(c.model)
  v = enc.init(jax.random.PRNGKey(0), x[:2])

  def loss(p, x):
    (rep, _), new = enc.apply({"params": p, "batch_stats": v["batch_stats"]},
                              x, train=True, mutable=["batch_stats"])
    return rep.sum(), new
  return loss, v["params"], x
