"""Steady-state train-step throughput (compile excluded), VICReg, float32.

  python benchmarks/train_step.py [--steps=5] [--models=quickstart,...]

Synthetic uint8 batches of the right shapes (the input pipeline is measured by
benchmarks/input_pipeline.py); the step includes on-device augmentation of
both views, forward/backward of encoder + projector, the loss and the LARS
update. images/sec counts examples (each is 2 views) per second.
"""

import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

from ssljax import train
from ssljax.data import pipeline

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
import quickstart  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer("steps", 5, "Timed steps per model.")
flags.DEFINE_list("models", ["quickstart", "resnet18_32", "resnet50_224",
                             "vit_small_224"], "Which rows to run.")
FLAGS = flags.FLAGS


def variant(name):
  c = quickstart.get_config()
  c.progress, c.summary_eval = False, False
  if name == "resnet18_32":
    c.model = dict(name="resnet18", stem="cifar", dtype="float32")
    c.projector, c.batch_size = "2048-2048-2048", 64
  elif name == "resnet50_224":
    c.model = dict(name="resnet50", dtype="float32")
    c.projector, c.batch_size, c.data.image_size = "8192-8192-8192", 16, 224
  elif name == "vit_small_224":
    c.model = dict(name="vit_small", dtype="float32")
    c.projector, c.batch_size, c.data.image_size = "2048-2048-2048", 16, 224
  return c


def main(_):
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s)")
  print(f"{'model':<16} {'batch':>5} {'px':>4} {'s/step':>8} {'images/s':>9}")
  for name in FLAGS.models:
    c = variant(name)
    s = train.setup(c, 10_000, 20)
    step = train.jit_train_step(s)
    state = train.init_state(s, 0)
    size, b = c.data.image_size, c.batch_size
    rng = np.random.default_rng(0)
    batch = {"global": rng.integers(0, 256, (b, 2, size, size, 3), np.uint8),
             "label": rng.integers(0, 20, (b,), np.int32)}
    batch = pipeline.to_global(batch, s.mesh)
    state, m = step(state, batch)  # compile
    jax.block_until_ready(m)
    t = time.perf_counter()
    for _ in range(FLAGS.steps):
      state, m = step(state, batch)
    jax.block_until_ready(m)
    dt = (time.perf_counter() - t) / FLAGS.steps
    print(f"{name:<16} {b:>5} {size:>4} {dt:>8.3f} {b / dt:>9.1f}",
          flush=True)


if __name__ == "__main__":
  app.run(main)
