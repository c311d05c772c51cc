"""Per-device memory, FLOPs and predicted wall time of the ImageNet recipes.

  python benchmarks/scale.py [--configs=vicreg_resnet50_imagenet,...]
      [--chips=32] [--out=/tmp/scale.json]

For each ImageNet config, the train step (ssljax.train's, everything in it:
augmentation, forward and backward of every view, EMA targets, the
optimizer) is lowered and compiled on ONE device at the per-device batch
the recipe has on `--chips` data-parallel chips (default 32: a v4-64 or
v5p-64 slice; 8 × H100 rows are rescaled to 8 chips). Nothing runs: the
inputs are abstract (jax.ShapeDtypeStruct). Reported per device:
  memory   XLA's memory analysis of the compiled step (ssljax.perf):
           arguments (parameters, optimizer and method state, the batch),
           outputs, temporaries; on an accelerator the same program's
           buffers are laid out by another backend, so these are an
           estimate (XLA:CPU keeps fewer temporaries live than XLA:TPU's
           fused schedules need, and holds nothing for collectives);
  FLOPs    XLA's cost analysis of the same program, per example, next to
           an analytic count of the trunk's forward (2 FLOPs per
           multiply-add: ResNet-50 4.1 G MACs at 224 px, ViT from its
           layer sizes) × 3 (forward + backward) × views;
  time     predicted wall time of the paper's run: epochs × 1,281,167
           images × compiled FLOPs per example / (chips × bf16 peak × MFU)
           with MFU anchors from public runs: 17% for ResNets (MLPerf
           ResNet-50 on H100), 27% for ViTs (ViT-B/16 on TPU v4) — a
           prediction, not a measurement.
"fits" compares arguments + temporaries with the chip's HBM (v4 32 GiB,
v5p 95 GiB, H100 80 GiB), compiled with parameters and optimizer state
replicated (mesh.fsdp = 1); a recipe that does not fit can shard them over
`mesh.fsdp` devices (per-device argument bytes fall ≈ 1/fsdp,
tests/test_fsdp.py) or take a smaller per-device batch.
Runtime: about a minute of compilation per config on a CPU core.
"""

import json
import math
import os
import sys
import time

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from ssljax import models  # pylint: disable=g-import-not-at-top
from ssljax import perf  # pylint: disable=g-import-not-at-top
from ssljax import train_state  # pylint: disable=g-import-not-at-top
from ssljax import train_step  # pylint: disable=g-import-not-at-top
from ssljax.experiments import load_config  # pylint: disable=g-import-not-at-top

CONFIGS = ("vicreg_resnet50_imagenet", "sag_vicreg_resnet50_imagenet",
           "mveb_resnet50_imagenet", "byol_resnet50_imagenet",
           "simclr_resnet50_imagenet", "mae_vit_base_imagenet",
           "mae_vit_large_imagenet",
           "dino_vit_small_imagenet", "ijepa_vit_huge_imagenet")
IMAGENET = 1_281_167
# name, chips, bf16 peak per chip (perf table), HBM GiB.
SYSTEMS = (("v4-64", 32, "TPU v4", 32), ("v5p-64", 32, "TPU v5p", 95),
           ("8×H100", 8, "H100", 80))
MFU = {"resnet": 0.17, "vit": 0.27}

flags.DEFINE_list("configs", list(CONFIGS), "Configs under configs/.")
flags.DEFINE_integer("chips", 32, "Data-parallel chips the per-device batch "
                     "is computed for.")
flags.DEFINE_string("out", None, "Also write the rows as JSON here.")
FLAGS = flags.FLAGS


def resnet50_forward_flops(size):
  return 2 * 4.1e9 * (size / 224) ** 2


def vit_forward_flops(width, depth, patch, size, mlp_ratio=4, tokens=None):
  """2 × multiply-adds of the blocks (q, k, v, out, MLP, attention) and
  the patch embedding, at `tokens` tokens (default: all patches)."""
  t = tokens or (size // patch) ** 2
  per_block = t * (4 + 2 * mlp_ratio) * width ** 2 + 2 * t * t * width
  return 2 * (depth * per_block + (size // patch) ** 2 * 3 * patch ** 2
              * width)


def analytic_flops(cfg):
  """Analytic train FLOPs per example (forward × 3 over the views) of the
  trunk alone, or None where the recipe's trunk work is not simple."""
  d, m = cfg.data, cfg.model
  views = [(d.image_size, d.num_global), (d.local_size, d.num_local)]
  if m.name.startswith("resnet50"):
    return 3 * sum(n * resnet50_forward_flops(s) for s, n in views)
  if cfg.method == "mae":  # the encoder sees 25% of the patches
    vit = models.from_config(m)
    t = int((d.image_size // vit.patch_size) ** 2 * (1 - cfg.mae.mask_ratio))
    return 3 * vit_forward_flops(vit.width, vit.depth, vit.patch_size,
                                 d.image_size, tokens=t + 1)
  if m.name.startswith("vit") and cfg.method == "dino":
    vit = models.from_config(m)
    return 3 * sum(n * vit_forward_flops(vit.width, vit.depth, vit.patch_size,
                                         s, tokens=(s // vit.patch_size) ** 2
                                         + 1) for s, n in views)
  return None


def abstract_batch(cfg, n):
  d = cfg.data
  b = {"global": jax.ShapeDtypeStruct(
      (n, d.num_global, d.image_size, d.image_size, 3), jnp.uint8)}
  if d.num_local:
    b["local"] = jax.ShapeDtypeStruct(
        (n, d.num_local, d.local_size, d.local_size, 3), jnp.uint8)
  for k in train_step.label_keys(cfg):
    if k in ("label", cfg.data.label_key):
      b[k] = jax.ShapeDtypeStruct((n,), jnp.int32)
  return b


def measure(name, chips):
  cfg = load_config(name)
  per_device = max(cfg.batch_size // chips, 1)
  paper_batch = cfg.batch_size
  cfg.batch_size = per_device
  mesh = train_state.make_mesh(jax.devices()[:1])
  s = train_state.setup(cfg, IMAGENET, 1000, mesh=mesh)
  state = jax.eval_shape(lambda: train_state.init_state(s, 0))
  t0 = time.perf_counter()
  compiled = train_step.jit_train_step(s).lower(
      state, abstract_batch(cfg, per_device)).compile()
  flops = perf.compiled_flops(compiled)
  mem = perf.compiled_memory(compiled)
  params = sum(x.size for x in jax.tree.leaves(state.params))
  row = dict(config=name, method=cfg.method, model=cfg.model.name,
             params_m=params / 1e6, paper_batch=paper_batch,
             per_device_batch=per_device, compile_s=time.perf_counter() - t0,
             gflops_per_example=flops / per_device / 1e9,
             analytic_gflops_per_example=(analytic_flops(cfg) or math.nan)
             / 1e9, memory_gib={k: v / 2**30 for k, v in mem.items()})
  kind = "vit" if cfg.model.name.startswith("vit") else "resnet"
  examples = cfg.num_epochs * IMAGENET
  for system, n_chips, device, hbm in SYSTEMS:
    rate = n_chips * perf.peak_flops(device) * MFU[kind]
    hours = examples * flops / per_device / rate / 3600
    # Per-device memory at this system's per-device batch: the batch-
    # dependent part (temporaries, batch) scales with it, roughly.
    scale = (paper_batch / n_chips) / per_device
    need = (mem["arguments"] + mem["temporaries"] * scale) / 2**30
    row[system] = dict(hours=hours, fits=need <= hbm, need_gib=need)
  return row


def main(argv):
  del argv
  rows = []
  print(f"{'config':32s} {'params M':>8s} {'batch/dev':>9s} {'GFLOP/ex':>9s} "
        f"{'analytic':>9s} {'args GiB':>8s} {'temp GiB':>8s} "
        + " ".join(f"{s[0] + ' h':>12s}" for s in SYSTEMS))
  for name in FLAGS.configs:
    r = measure(name, FLAGS.chips)
    rows.append(r)
    m = r["memory_gib"]
    print(f"{name:32s} {r['params_m']:8.1f} {r['per_device_batch']:9d} "
          f"{r['gflops_per_example']:9.1f} "
          f"{r['analytic_gflops_per_example']:9.1f} {m['arguments']:8.2f} "
          f"{m['temporaries']:8.2f} "
          + " ".join(f"{r[s[0]]['hours']:9.0f}{'' if r[s[0]]['fits'] else '*':>3s}"
                     for s in SYSTEMS), flush=True)
  print("hours: predicted wall time of the paper's epochs at the MFU anchors; "
        "* = per-device memory estimate above the chip's HBM.")
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(rows, f, indent=1)


if __name__ == "__main__":
  app.run(main)
