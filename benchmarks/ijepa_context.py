"""I-JEPA's context encoder on the gathered context vs the masked full grid.

  python benchmarks/ijepa_context.py [--config=compare_cpu]
      [--arg=ijepa,hierarchical_shapes] [--batch=256] [--steps=5] [--warmup=1]

One train step of the config (ssljax.train's jitted step: augmentation,
context and target encoders, predictor, loss, online probe, AdamW, EMA),
compiled twice: `ijepa.context_gather=True` (the encoder runs on the
context's m tokens padded to the smallest of T/4, T/2, T that holds them,
picked per step by a lax.switch) and False (all T tokens, attention-masked
to the context). Synthetic uint8 batches; the masks are the train step's
own (sampled from its key), so the context sizes are the real ones. Prints
compile seconds, the median ms of --steps steps after --warmup (each run to
completion), the loss of the last step (the two must agree) and
ratio = full-grid ms / gathered ms (> 1: gathering is faster). Run it on
idle cores: the two variants alternate step by step so that a background
load slows both alike.
"""

import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ssljax import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from ssljax.data import pipeline  # pylint: disable=g-import-not-at-top
from ssljax.experiments import load_config  # pylint: disable=g-import-not-at-top

flags.DEFINE_string("config", "compare_cpu", "configs/NAME of an I-JEPA run.")
flags.DEFINE_string("arg", "ijepa,hierarchical_shapes", "Its get_config arg.")
flags.DEFINE_integer("batch", 256, "Global batch.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant (median).")
flags.DEFINE_integer("warmup", 1, "Untimed steps per variant.")
FLAGS = flags.FLAGS


def compiled_step(gather):
  cfg = load_config(FLAGS.config, FLAGS.arg)
  if cfg.method != "ijepa":
    sys.exit(f"--config={FLAGS.config} --arg={FLAGS.arg} trains "
             f"{cfg.method!r}, not ijepa.")
  cfg.ijepa.context_gather = gather
  cfg.batch_size = FLAGS.batch
  mesh = train.make_mesh(jax.local_devices())
  s = train.setup(cfg, 10_000, 24, mesh=mesh)
  state = train.init_state(s, 0)
  d = cfg.data
  rng = np.random.default_rng(0)
  batch = {"global": rng.integers(0, 256, (FLAGS.batch, d.num_global,
                                           d.image_size, d.image_size, 3),
                                  np.uint8)}
  for k in train.label_keys(cfg):
    batch[k] = rng.integers(0, 24, (FLAGS.batch,), np.int32)
  batch = pipeline.to_global(batch, mesh)
  t0 = time.perf_counter()
  step = train.jit_train_step(s).lower(state, batch).compile()
  return step, state, batch, time.perf_counter() - t0


def main(_):
  runs = {g: compiled_step(g) for g in (True, False)}
  times = {True: [], False: []}
  loss = {}
  for i in range(FLAGS.warmup + FLAGS.steps):
    for g, (step, state, batch, _) in runs.items():
      t = time.perf_counter()
      state, m = step(state, batch)
      jax.block_until_ready(m)
      if i >= FLAGS.warmup:
        times[g].append(time.perf_counter() - t)
      runs[g] = (step, state, batch, runs[g][3])
      loss[g] = float(m["loss"])
  ms = {g: 1e3 * float(np.median(t)) for g, t in times.items()}
  print(f"{FLAGS.config}:{FLAGS.arg}, batch {FLAGS.batch}, {jax.device_count()} "
        f"{jax.devices()[0].device_kind} device(s)")
  for g, name in ((True, "gathered context"), (False, "masked full grid")):
    print(f"  {name:17s} compile {runs[g][3]:6.1f} s   step {ms[g]:9.1f} ms"
          f"   loss {loss[g]:.6f}")
  print(f"  ratio full / gathered: {ms[False] / ms[True]:.2f}")


if __name__ == "__main__":
  app.run(main)
