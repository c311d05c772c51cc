"""One command on one accelerator host: bf16 step time, examples/s, MFU.

  python benchmarks/accelerator.py [--rows=vicreg,mveb,mae] [--steps=20]
      [--batch_per_device=0] [--pipeline_seconds=20] [--out=FILE.json]
  python benchmarks/accelerator.py --tiny   # CPU smoke version (a test runs it)

Rows (the ImageNet configs, unchanged but for the batch):
  vicreg  configs/vicreg_resnet50_imagenet.py  ResNet-50, 2 × 224
  mveb    configs/mveb_resnet50_imagenet.py    ResNet-50, 2 × 224 + 6 × 96
  mae     configs/mae_vit_base_imagenet.py     ViT-B/16, 1 × 224, 75% masked
Every row is ssljax.train's jitted train step (on-device augmentation,
forward and backward of every view, EMA target, loss in float32, optimizer),
the model in bfloat16 as the configs set it, data-parallel over all local
devices. The per-device batch is the recipe's global batch over 32 chips
(the v4-64 / v5p-64 split of benchmarks/scale.py) unless
--batch_per_device is set. Inputs are synthetic uint8 batches already on
device, so the step is timed alone: compile excluded, then the median of
--steps steps after --warmup, each run to completion. FLOPs per device step
are XLA's cost analysis of the compiled step and MFU uses ssljax.perf's
bf16 peak table (blank for a device not in it, e.g. a CPU).

Host headroom: the ssljax input pipeline on the host's cores (one grain
worker process per core) doing the row's crops from `imagenet_like/small`
(generated ImageNet-sized JPEGs; built on first use, about a minute) for
--pipeline_seconds. headroom = host examples/s over what the local devices
consume (devices × examples/s/device); below 1 the run is input-bound on
this host.

Runtime on one H100-class GPU: about a minute of compilation and 20 steps
per row, plus the pipeline; within 8 minutes for the three rows.
"""

import json
import os
import sys
import time

from absl import app
from absl import flags
import jax
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import ssljax.data  # pylint: disable=g-import-not-at-top,wrong-import-position
from ssljax import perf  # pylint: disable=g-import-not-at-top
from ssljax import train_state  # pylint: disable=g-import-not-at-top
from ssljax import train_step  # pylint: disable=g-import-not-at-top
from ssljax.data import pipeline  # pylint: disable=g-import-not-at-top
from ssljax.experiments import load_config  # pylint: disable=g-import-not-at-top
import timing  # pylint: disable=g-import-not-at-top  # benchmarks/timing.py

ROWS = {"vicreg": "vicreg_resnet50_imagenet",
        "mveb": "mveb_resnet50_imagenet",
        "mae": "mae_vit_base_imagenet"}
CHIPS = 32

flags.DEFINE_list("rows", list(ROWS), f"Rows: {', '.join(ROWS)}.")
flags.DEFINE_integer("steps", 20, "Timed steps (median reported).")
flags.DEFINE_integer("warmup", 3, "Untimed steps after compilation.")
flags.DEFINE_integer("batch_per_device", 0, "0: the recipe's batch / 32.")
flags.DEFINE_float("pipeline_seconds", 20.0, "Host pipeline measurement; 0 "
                   "skips it.")
flags.DEFINE_string("pipeline_dataset", "imagenet_like/small", "TFDS JPEG "
                    "dataset the host pipeline reads.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir of that dataset.")
flags.DEFINE_bool("tiny", False, "CPU smoke version: float32 ResNet-18 "
                  "width 8 / 2-block ViT-tiny at 32 px, tiny heads, 8 "
                  "examples per device, imagenet_like/tiny.")
flags.DEFINE_string("out", None, "Also write the rows as JSON here.")
FLAGS = flags.FLAGS


def row_config(row):
  cfg = load_config(ROWS[row])
  if FLAGS.tiny:
    # float32: XLA:CPU compiles bfloat16 steps several times slower, and
    # the smoke version checks the script, not the chip.
    cfg.data.image_size, cfg.data.local_size = 32, 16
    if cfg.model.name.startswith("resnet"):
      cfg.model = dict(name="resnet18", stem="cifar", width=8,
                       dtype="float32")
      cfg.projector = "64-64-64"
    else:
      cfg.model = dict(name="vit_tiny", patch_size=8, image_size=32,
                       depth=2, dtype="float32")
      cfg.mae.update(decoder_width=32, decoder_depth=1, decoder_heads=2)
  return cfg


def device_row(row, per_device):
  """Compiled train step of `row` on all local devices: times and rates."""
  cfg = row_config(row)
  devices = jax.local_devices()
  cfg.batch_size = per_device * len(devices)
  mesh = train_state.make_mesh(devices)
  s = train_state.setup(cfg, 1_281_167, 1000, mesh=mesh)
  state = train_state.init_state(s, 0)
  batch = pipeline.to_global(
      timing.synthetic_batch(cfg, cfg.batch_size, 1000), mesh)
  t0 = time.perf_counter()
  compiled = train_step.jit_train_step(s).lower(state, batch).compile()
  compile_s = time.perf_counter() - t0
  flops = perf.compiled_flops(compiled)
  for _ in range(FLAGS.warmup):
    state, m = compiled(state, batch)
  jax.block_until_ready(m)
  times = []
  for _ in range(FLAGS.steps):
    t = time.perf_counter()
    state, m = compiled(state, batch)
    jax.block_until_ready(m)
    times.append(time.perf_counter() - t)
  step_s = float(np.median(times))
  out = dict(row=row, config=ROWS[row], model=cfg.model.name,
             device=devices[0].device_kind, devices=len(devices),
             batch_per_device=per_device, compile_s=compile_s,
             step_ms=step_s * 1e3, loss=float(m["loss"]))
  out.update(perf.rates(1, step_s, cfg.batch_size, len(devices), flops,
                        devices[0].device_kind))
  out["gflops_per_example"] = (flops / per_device / 1e9) if flops else None
  return cfg, out


def host_rate(cfg, src):
  """Examples/s of the ssljax pipeline doing cfg's crops on every core."""
  batch = 8 if FLAGS.tiny else 64
  it = pipeline.train_iterator(
      src, global_batch=batch, crops=pipeline.crops_from_config(cfg.data),
      num_threads=1, worker_count=os.cpu_count(), process_index=0,
      process_count=1)
  return timing.iterator_rate(it, batch, FLAGS.pipeline_seconds, 1)


def main(_):
  unknown = [r for r in FLAGS.rows if r not in ROWS]
  if unknown:
    sys.exit(f"Unknown row(s) {unknown}; valid: {', '.join(ROWS)}.")
  if FLAGS.tiny:
    FLAGS.steps, FLAGS.warmup = min(FLAGS.steps, 2), min(FLAGS.warmup, 1)
    FLAGS.pipeline_dataset = "imagenet_like/tiny"
    FLAGS.pipeline_seconds = min(FLAGS.pipeline_seconds, 2.0)
  dev = jax.local_devices()
  print(f"jax {jax.__version__}: {len(dev)} × {dev[0].device_kind}, "
        f"{os.cpu_count()} host cores")
  src = (ssljax.data.load_source(FLAGS.pipeline_dataset, "train",
                                 FLAGS.data_dir)
         if FLAGS.pipeline_seconds > 0 else None)
  print(f"{'row':<7} {'model':<10} {'batch/dev':>9} {'step ms':>8} "
        f"{'ex/s/dev':>9} {'GFLOP/ex':>9} {'TFLOP/s/dev':>11} {'MFU':>6} "
        f"{'host ex/s':>9} {'headroom':>8}", flush=True)
  rows = []
  for row in FLAGS.rows:
    per_device = FLAGS.batch_per_device or (
        8 if FLAGS.tiny else max(load_config(ROWS[row]).batch_size // CHIPS,
                                 1))
    cfg, r = device_row(row, per_device)
    if src is not None:
      r["host_examples_per_sec"] = host_rate(cfg, src)
      r["headroom"] = r["host_examples_per_sec"] / (
          r["devices"] * r["examples_per_sec_per_device"])
    rows.append(r)

    def fmt(key, spec, width):
      v = r.get(key)
      return f"{v:{width}{spec}}" if v is not None else f"{'–':>{width}}"
    print(f"{row:<7} {r['model']:<10} {per_device:>9} {r['step_ms']:>8.1f} "
          f"{fmt('examples_per_sec_per_device', '.1f', 9)} "
          f"{fmt('gflops_per_example', '.1f', 9)} "
          f"{fmt('tflops_per_sec_per_device', '.2f', 11)} "
          f"{fmt('mfu', '.3f', 6)} {fmt('host_examples_per_sec', '.0f', 9)} "
          f"{fmt('headroom', '.2f', 8)}", flush=True)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main)
