"""XLA:CPU flag sets on the quickstart step: time, ratio to PyTorch, numerics.

  python benchmarks/cpu_flags.py [--steps=10] [--sets=default,onednn,...]

Each flag set runs in its own process (XLA_FLAGS is read once, at backend
start). The process times, on the quickstart config (VICReg, ResNet-18 w8,
batch 256, 32 px, float32): the full jitted train step (augmentation,
forward/backward, loss, probe, AdamW) and the trunk alone, forward +
backward of the summed representation on one view with train-mode
BatchNorm — median ms over --steps after --warmup. It also saves, for one
fixed input, the step's loss, the trunk's gradients and its new BatchNorm
statistics; the parent compares them with the default set's (max relative
error, per leaf, normalised by the leaf's max magnitude). PyTorch (eager,
channels_last, all cores; benchmarks/torch_reference.py) times the same two
things once, in this process, after the XLA children, so the ratio columns
(ssljax ms / PyTorch ms) of every set share one PyTorch reference. Run on
idle cores.
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app
from absl import flags
import numpy as np

SETS = {
    "default": "",
    "onednn": ("--xla_cpu_use_onednn=false "
               "--xla_cpu_experimental_onednn_custom_call=true"),
    "onednn_fusion": "--xla_cpu_experimental_onednn_fusion_type=dot,eltwise",
    "ynn_conv": ("--xla_cpu_experimental_ynn_fusion_type="
                 "individual_convolution"),
    "ynn_conv_dot": ("--xla_cpu_experimental_ynn_fusion_type="
                     "individual_convolution,individual_dot"),
}

flags.DEFINE_list("sets", list(SETS), f"Flag sets: {', '.join(SETS)}.")
flags.DEFINE_integer("steps", 10, "Timed calls (median reported).")
flags.DEFINE_integer("warmup", 2, "Untimed calls first.")
flags.DEFINE_string("child", None, "Internal: output folder of one child.")
flags.DEFINE_bool("torch", True, "Also time PyTorch (needs torch).")
FLAGS = flags.FLAGS
HERE = os.path.dirname(os.path.abspath(__file__))


def median_ms(fn):
  import timing  # pylint: disable=g-import-not-at-top
  return timing.median_ms(fn, FLAGS.steps, FLAGS.warmup)


def batch_of(c):
  rng = np.random.default_rng(0)
  b, size = c.batch_size, c.data.image_size
  return {"global": rng.integers(0, 256, (b, 2, size, size, 3), np.uint8),
          "label": rng.integers(0, 20, (b,), np.int32)}


def child(out):
  """Times and numerics of this process' XLA_FLAGS, into out/."""
  import jax  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(HERE, "..", "configs"))
  sys.path.insert(0, HERE)
  import quickstart  # pylint: disable=g-import-not-at-top
  import timing  # pylint: disable=g-import-not-at-top
  from ssljax import train_state  # pylint: disable=g-import-not-at-top
  from ssljax import train_step  # pylint: disable=g-import-not-at-top
  from ssljax.data import pipeline  # pylint: disable=g-import-not-at-top
  c = quickstart.get_config()
  c.progress, c.summary_eval = False, False
  s = train_state.setup(c, 10_000, 20)
  step = train_step.jit_train_step(s)
  init = train_state.init_state(s, 0)
  batch = pipeline.to_global(batch_of(c), s.mesh)
  new, m = step(init, batch)  # donates init
  step_loss = float(m["loss"])
  state = [new]

  def run():
    state[0], m = step(state[0], batch)
    jax.block_until_ready(m)
  step_ms = median_ms(run)
  loss, params, x = timing.trunk_loss(c)
  grad = jax.jit(jax.grad(loss, has_aux=True))
  g, new = grad(params, x)
  trunk_ms = median_ms(lambda: jax.block_until_ready(grad(params, x)))
  leaves = {"grad/" + jax.tree_util.keystr(k): np.asarray(v)
            for k, v in jax.tree_util.tree_leaves_with_path(g)}
  leaves.update({"bn/" + jax.tree_util.keystr(k): np.asarray(v)
                 for k, v in jax.tree_util.tree_leaves_with_path(new)})
  np.savez(os.path.join(out, "numerics.npz"), **leaves)
  with open(os.path.join(out, "times.json"), "w") as f:
    json.dump({"step_ms": step_ms, "trunk_ms": trunk_ms,
               "step_loss": step_loss}, f)


def torch_times():
  import torch  # pylint: disable=g-import-not-at-top
  sys.path.insert(0, os.path.join(HERE, "..", "configs"))
  sys.path.insert(0, HERE)
  import quickstart  # pylint: disable=g-import-not-at-top
  import timing  # pylint: disable=g-import-not-at-top
  import torch_reference  # pylint: disable=g-import-not-at-top
  torch.set_num_threads(os.cpu_count())
  c = quickstart.get_config()
  b = batch_of(c)
  ref = torch_reference.TrainStep(c, 20, torch.channels_last)
  images = torch.from_numpy(b["global"])
  labels = torch.from_numpy(b["label"]).long()
  step = median_ms(lambda: ref(images, labels))
  _, _, x = timing.trunk_loss(c)
  enc = torch_reference.build_encoder(c.model).to(
      memory_format=torch.channels_last).train()
  xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(
      memory_format=torch.channels_last)

  def fwd_bwd():
    enc.zero_grad(set_to_none=True)
    enc(xt).sum().backward()
  return step, median_ms(fwd_bwd)


def max_rel(a, b):
  return max(float(np.abs(a[k] - b[k]).max() / max(np.abs(b[k]).max(), 1e-30))
             for k in b.files)


def main(_):
  if FLAGS.child:
    child(FLAGS.child)
    return
  unknown = [s for s in FLAGS.sets if s not in SETS]
  if unknown:
    sys.exit(f"Unknown flag set(s) {unknown}; valid: {', '.join(SETS)}.")
  results = {}
  for name in ["default"] + [s for s in FLAGS.sets if s != "default"]:
    out = tempfile.mkdtemp()
    env = dict(os.environ, XLA_FLAGS=SETS[name])
    cmd = [sys.executable, __file__, f"--child={out}",
           f"--steps={FLAGS.steps}", f"--warmup={FLAGS.warmup}"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode:
      print(f"{name}: failed ({SETS[name]}):\n{proc.stderr[-2000:]}")
      continue
    with open(os.path.join(out, "times.json")) as f:
      results[name] = json.load(f)
    results[name]["numerics"] = np.load(os.path.join(out, "numerics.npz"))
    print(f"{name}: done", flush=True)
  ref = torch_times() if FLAGS.torch else None
  print(f"\nquickstart, median of {FLAGS.steps} calls, ms" +
        (f"; PyTorch: step {ref[0]:.1f}, trunk fwd+bwd {ref[1]:.1f}"
         if ref else ""))
  head = f"{'set':<14} {'step':>8} {'trunk':>8}"
  head += f" {'step/torch':>10} {'trunk/torch':>11}" if ref else ""
  print(head + f" {'loss rel':>9} {'grad+BN rel':>11}  flags")
  base = results.get("default")
  for name, r in results.items():
    row = f"{name:<14} {r['step_ms']:>8.1f} {r['trunk_ms']:>8.1f}"
    if ref:
      row += f" {r['step_ms'] / ref[0]:>10.2f} {r['trunk_ms'] / ref[1]:>11.2f}"
    if base:
      dl = abs(r["step_loss"] - base["step_loss"]) / abs(base["step_loss"])
      row += f" {dl:>9.1e} {max_rel(r['numerics'], base['numerics']):>11.1e}"
    print(row + f"  {SETS[name] or '(none)'}", flush=True)


if __name__ == "__main__":
  app.run(main)
