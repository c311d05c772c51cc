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
from ssljax import train_state  # pylint: disable=g-import-not-at-top,wrong-import-position
from ssljax import train_step  # pylint: disable=g-import-not-at-top,wrong-import-position
from ssljax.data import pipeline  # pylint: disable=g-import-not-at-top
from ssljax.experiments import load_config  # pylint: disable=g-import-not-at-top
import timing  # pylint: disable=g-import-not-at-top  # benchmarks/timing.py

flags.DEFINE_string("config", "compare_cpu", "configs/NAME of an I-JEPA run.")
flags.DEFINE_string("arg", "ijepa,hierarchical_shapes", "Its get_config arg.")
flags.DEFINE_integer("batch", 256, "Global batch.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant (median).")
flags.DEFINE_integer("warmup", 1, "Untimed steps per variant.")
FLAGS = flags.FLAGS


NUM_CLASSES = 24  # hierarchical_shapes' fine labels: the online probe's


def compiled_step(gather):
  """(compiled train step, its initial state, the batch, compile seconds)."""
  cfg = load_config(FLAGS.config, FLAGS.arg)
  if cfg.method != "ijepa":
    sys.exit(f"--config={FLAGS.config} --arg={FLAGS.arg} trains "
             f"{cfg.method!r}, not ijepa.")
  cfg.ijepa.context_gather = gather
  cfg.batch_size = FLAGS.batch
  mesh = train_state.make_mesh(jax.local_devices())
  s = train_state.setup(cfg, 10_000, NUM_CLASSES, mesh=mesh)
  state = train_state.init_state(s, 0)
  batch = pipeline.to_global(
      timing.synthetic_batch(cfg, FLAGS.batch, NUM_CLASSES), mesh)
  t0 = time.perf_counter()
  step = train_step.jit_train_step(s).lower(state, batch).compile()
  return step, state, batch, time.perf_counter() - t0


def main(_):
  variants = (True, False)  # gathered, masked full grid
  steps, states, batches, compile_s = zip(*map(compiled_step, variants))
  states = list(states)
  times = {g: [] for g in variants}
  loss = {}
  for i in range(FLAGS.warmup + FLAGS.steps):
    for k, g in enumerate(variants):  # alternate: a load slows both alike
      t = time.perf_counter()
      states[k], m = steps[k](states[k], batches[k])
      jax.block_until_ready(m)
      if i >= FLAGS.warmup:
        times[g].append(time.perf_counter() - t)
      loss[g] = float(m["loss"])
  ms = {g: 1e3 * float(np.median(t)) for g, t in times.items()}
  print(f"{FLAGS.config}:{FLAGS.arg}, batch {FLAGS.batch}, {jax.device_count()} "
        f"{jax.devices()[0].device_kind} device(s)")
  for k, (g, name) in enumerate(zip(variants, ("gathered context",
                                               "masked full grid"))):
    print(f"  {name:17s} compile {compile_s[k]:6.1f} s   step {ms[g]:9.1f} ms"
          f"   loss {loss[g]:.6f}")
  print(f"  ratio full / gathered: {ms[False] / ms[True]:.2f}")


if __name__ == "__main__":
  app.run(main)
