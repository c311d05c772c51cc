"""Host input-pipeline throughput (examples/sec) on this machine.

  python benchmarks/input_pipeline.py [--data_dir=DIR] [--seconds=20]

Two recipes from `hierarchical_shapes` (built on first use):
  2x32:        2 global views at 32 px from the 32 px config (CIFAR-style).
  2x224+6x96:  MVEB multi-crop (scales 0.4-1 and 0.05-0.4) from the 224 px
               images of the `224_small` config.
Each is run (a) in one process with one reader thread (≈ one core's worth;
the PIL resizes release the GIL, so this is an upper bound on 'per core'),
and (b) with one worker process per core. The first --warmup batches are
excluded. Reports examples/sec and images (views)/sec.
"""

import os
import time

from absl import app
from absl import flags

import ssljax.data
from ssljax.data import pipeline

flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
flags.DEFINE_float("seconds", 20.0, "Measured seconds per configuration.")
flags.DEFINE_integer("warmup", 3, "Batches excluded from timing.")
FLAGS = flags.FLAGS

RECIPES = {
    "2x32": ("hierarchical_shapes/32", 256, pipeline.Crops(
        global_size=32, global_scale=(0.2, 1.0))),
    "2x224+6x96": ("hierarchical_shapes/224_small", 64, pipeline.Crops(
        global_size=224, global_scale=(0.4, 1.0), num_local=6,
        local_size=96, local_scale=(0.05, 0.4))),
}


def measure(source, batch, crops, **kw):
  it = pipeline.train_iterator(source, global_batch=batch, crops=crops, **kw)
  for _ in range(FLAGS.warmup):
    next(it)
  n, t0 = 0, time.perf_counter()
  while time.perf_counter() - t0 < FLAGS.seconds:
    next(it)
    n += batch
  return n / (time.perf_counter() - t0)


def main(_):
  cores = os.cpu_count()
  print(f"{'recipe':<12} {'setting':<28} {'examples/s':>11} {'views/s':>9}")
  for name, (ds, batch, crops) in RECIPES.items():
    src = ssljax.data.load_source(ds, "train", FLAGS.data_dir)
    views = crops.num_global + crops.num_local
    for setting, kw in [("1 process, 1 thread", dict(num_threads=1)),
                        (f"{cores} worker processes", dict(
                            num_threads=1, worker_count=cores))]:
      eps = measure(src, batch, crops, **kw)
      print(f"{name:<12} {setting:<28} {eps:>11.0f} {eps * views:>9.0f}",
            flush=True)


if __name__ == "__main__":
  app.run(main)
