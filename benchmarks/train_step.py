"""Steady-state train-step time (compile excluded), VICReg, float32.

  python benchmarks/train_step.py [--steps=5] [--models=quickstart,...]
  python benchmarks/train_step.py --torch \\
      --models=quickstart,resnet18_32,vit_small_224 [--steps=20]

Synthetic uint8 batches of the right shapes (the input pipeline is measured
by benchmarks/input_pipeline.py). Every row is the quickstart recipe (VICReg
25/25/1, AdamW, float32) with its own model, projector, batch and image size.
The ssljax step is ssljax.train's jitted train step: on-device augmentation
of both views, forward/backward of encoder + projector, the loss, the online
probe and the AdamW update. "noaug" is the same step with augment="none"
(uint8 -> float and normalization only). Times are ms/step, the median of
--steps timed steps after --warmup untimed ones (ssljax's first compiles),
each step run to completion; ex/s counts examples (each 2 views) per second
of the ssljax step with augmentation.

--torch also times benchmarks/torch_reference.py, the same network (layer
for layer), loss, online probe and AdamW in eager PyTorch, without
augmentation (uint8 -> float and normalization only), with
torch.set_num_threads(os.cpu_count()) and --torch_format (default
channels_last), and prints ratio = ssljax ms / PyTorch ms, with and without
ssljax's augmentation (> 1: ssljax is slower). For the quickstart row it then
times each trunk alone on one view of the batch, train-mode BatchNorm:
forward (torch.no_grad) and forward + backward of the summed representation.
On cores busy with other work, set OMP_WAIT_POLICY=PASSIVE: PyTorch's
spin-waiting OpenMP threads otherwise slow it several-fold (8× for the
quickstart trunk on a loaded 2-core machine); on idle cores leave it unset.
PyTorch is not a dependency of ssljax: pip install torch (or the `bench`
extra, pip install -e ".[bench]").
"""

import os
import sys

from absl import app
from absl import flags
import jax
import numpy as np

from ssljax import train_state
from ssljax import train_step
from ssljax.data import pipeline
import timing  # benchmarks/timing.py

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "configs"))
import quickstart  # pylint: disable=g-import-not-at-top,wrong-import-position

flags.DEFINE_integer("steps", 5, "Timed steps per model (median reported).")
flags.DEFINE_integer("warmup", 2, "Untimed steps first (ssljax's first "
                     "compiles).")
flags.DEFINE_list("models", ["quickstart", "resnet18_32", "resnet50_224",
                             "vit_small_224"], "Which rows to run.")
flags.DEFINE_bool("torch", False, "Also time the PyTorch reference "
                  "(benchmarks/torch_reference.py); needs pip install torch.")
flags.DEFINE_enum("torch_format", "channels_last",
                  ["channels_last", "contiguous"],
                  "PyTorch memory format of the images and conv weights.")
flags.DEFINE_bool("noaug", None, "Also time ssljax with augmentation off "
                  "(default: only with --torch).")
FLAGS = flags.FLAGS

NUM_CLASSES = 20


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
  elif name != "quickstart":
    raise ValueError(f"Unknown row {name!r}.")
  return c


def median_ms(fn):
  return timing.median_ms(fn, FLAGS.steps, FLAGS.warmup)


def ssljax_ms(c, batch):
  s = train_state.setup(c, 10_000, NUM_CLASSES)
  step = train_step.jit_train_step(s)
  state = [train_state.init_state(s, 0)]
  batch = pipeline.to_global(batch, s.mesh)

  def run():
    state[0], m = step(state[0], batch)
    jax.block_until_ready(m)
  return median_ms(run)


def torch_format():
  import torch  # pylint: disable=g-import-not-at-top
  return getattr(torch, FLAGS.torch_format.replace("contiguous",
                                                   "contiguous_format"))


def torch_ms(c, batch):
  import torch  # pylint: disable=g-import-not-at-top
  import torch_reference  # pylint: disable=g-import-not-at-top
  ref = torch_reference.TrainStep(c, NUM_CLASSES, torch_format())
  images = torch.from_numpy(batch["global"])
  labels = torch.from_numpy(batch["label"]).long()
  return median_ms(lambda: ref(images, labels))


def trunk_ms(c):
  """{(framework, pass): ms} for the encoder alone on one view."""
  import torch  # pylint: disable=g-import-not-at-top
  import torch_reference  # pylint: disable=g-import-not-at-top
  loss, params, x = timing.trunk_loss(c)
  fwd, grad = jax.jit(loss), jax.jit(jax.grad(loss, has_aux=True))
  out = {("ssljax", "forward"): median_ms(
      lambda: jax.block_until_ready(fwd(params, x))),
         ("ssljax", "forward+backward"): median_ms(
             lambda: jax.block_until_ready(grad(params, x)))}
  tenc = torch_reference.build_encoder(c.model).to(
      memory_format=torch_format()).train()
  xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(
      memory_format=torch_format())

  def torch_fwd():
    with torch.no_grad():
      tenc(xt)

  def torch_fwd_bwd():
    tenc.zero_grad(set_to_none=True)
    tenc(xt).sum().backward()
  out["torch", "forward"] = median_ms(torch_fwd)
  out["torch", "forward+backward"] = median_ms(torch_fwd_bwd)
  return out


def main(_):
  noaug = FLAGS.torch if FLAGS.noaug is None else FLAGS.noaug
  print(f"jax {jax.__version__}, {jax.device_count()} "
        f"{jax.devices()[0].platform} device(s), {os.cpu_count()} CPUs")
  if FLAGS.torch:
    try:
      import torch  # pylint: disable=g-import-not-at-top
    except ImportError:
      sys.exit("--torch needs PyTorch, which ssljax does not depend on: "
               "pip install torch (or pip install -e '.[bench]')")
    torch.set_num_threads(os.cpu_count())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{FLAGS.torch_format}, OMP_WAIT_POLICY="
          f"{os.environ.get('OMP_WAIT_POLICY', '(unset)')}")
  print(f"ms/step: median of {FLAGS.steps} steps after {FLAGS.warmup} "
        "warm-up steps")
  head = f"{'model':<14} {'batch':>5} {'px':>4} {'ssljax':>8}"
  head += f" {'noaug':>8}" if noaug else ""
  head += f" {'torch':>8} {'ratio':>6}" if FLAGS.torch else ""
  head += f" {'ratio-noaug':>11}" if FLAGS.torch and noaug else ""
  print(head + f" {'ex/s':>7}", flush=True)
  for name in FLAGS.models:
    c = variant(name)
    rng = np.random.default_rng(0)
    b, size = c.batch_size, c.data.image_size
    batch = {"global": rng.integers(0, 256, (b, 2, size, size, 3), np.uint8),
             "label": rng.integers(0, NUM_CLASSES, (b,), np.int32)}
    ms = ssljax_ms(c, batch)
    row = f"{name:<14} {b:>5} {size:>4} {ms:>8.1f}"
    if noaug:
      c_off = variant(name)
      c_off.augment = "none"
      ms_off = ssljax_ms(c_off, batch)
      row += f" {ms_off:>8.1f}"
    if FLAGS.torch:
      ms_torch = torch_ms(c, batch)
      row += f" {ms_torch:>8.1f} {ms / ms_torch:>6.2f}"
      row += f" {ms_off / ms_torch:>11.2f}" if noaug else ""
    print(row + f" {b / ms * 1e3:>7.1f}", flush=True)
  if FLAGS.torch and "quickstart" in FLAGS.models:
    c = variant("quickstart")
    t = trunk_ms(c)
    print(f"\nquickstart trunk alone, one view ({c.batch_size} × "
          f"{c.data.image_size} px), train-mode BN, ms:")
    print(f"{'pass':<17} {'ssljax':>8} {'torch':>8} {'ratio':>6}")
    for p in ("forward", "forward+backward"):
      print(f"{p:<17} {t['ssljax', p]:>8.1f} {t['torch', p]:>8.1f} "
            f"{t['ssljax', p] / t['torch', p]:>6.2f}")


if __name__ == "__main__":
  app.run(main)
