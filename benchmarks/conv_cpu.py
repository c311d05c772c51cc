"""The filter gradient of a 3×3 convolution on the CPU: XLA's own against
patches + matmul formulations (the quickstart ResNet's layer shapes).

  python benchmarks/conv_cpu.py [--batch=512] [--repeats=5]

The backward pass of the quickstart step is where ssljax trails PyTorch on
a CPU, and most of it is the filter-gradient convolution of the narrow
layers (dW = Σ over n, h, w of a 3×3 neighbourhood of x times dy). This
times, jit-compiled, float32, one layer shape per row (batch = both views
of the quickstart batch):
  xla       jax.vjp of lax.conv_general_dilated (what training uses)
  patches   lax.conv_general_dilated_patches, then one contraction
  im2col    the nine shifted slices concatenated, then one contraction
  9dots     one [C, NHW] × [NHW, O] matmul per kernel offset
and, for reference, the forward convolution and the whole forward +
backward. Each formulation's dW is checked against XLA's (max relative
difference printed). Results and what they imply: docs/benchmarks.md.
"""


from absl import app
from absl import flags
import jax
from jax import lax
import jax.numpy as jnp
import numpy as np

from timing import best_time  # pylint: disable=g-bad-import-order

flags.DEFINE_integer("batch", 512, "Images per call (2 views × 256).")
flags.DEFINE_integer("repeats", 5, "Timed calls per cell (best is kept).")
FLAGS = flags.FLAGS

# (spatial size, in channels, out channels) of the width-8 CIFAR-stem
# ResNet-18's 3×3 convolutions, one per stage.
SHAPES = ((32, 8, 8), (16, 16, 16), (8, 32, 32), (4, 64, 64))
DN = ("NHWC", "HWIO", "NHWC")


def conv(x, w):
  return lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=DN)


def dw_xla(x, dy, w):
  return jax.vjp(lambda w: conv(x, w), w)[1](dy)[0]


def _shifted(x):
  h, w = x.shape[1:3]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  return [xp[:, i:i + h, j:j + w, :] for i in range(3) for j in range(3)]


def dw_patches(x, dy, w):
  p = lax.conv_general_dilated_patches(x, (3, 3), (1, 1), "SAME",
                                       dimension_numbers=DN)
  c, o = w.shape[2:]  # patch features are ordered (c, kh, kw)
  return jnp.einsum("nhwk,nhwo->ko", p, dy).reshape(c, 3, 3, o).transpose(
      1, 2, 0, 3)


def dw_im2col(x, dy, w):
  p = jnp.concatenate(_shifted(x), axis=-1)  # features ordered (kh, kw, c)
  return jnp.einsum("nhwk,nhwo->ko", p, dy).reshape(w.shape)


def dw_9dots(x, dy, w):
  o = dy.shape[-1]
  d2 = dy.reshape(-1, o)
  return jnp.stack([s.reshape(-1, x.shape[-1]).T @ d2
                    for s in _shifted(x)]).reshape(w.shape)


def main(_):
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s), "
        f"batch {FLAGS.batch}, ms (best of {FLAGS.repeats})")
  names = ("xla", "patches", "im2col", "9dots")
  print(f"{'layer':<12} {'fwd':>7} {'fwd+bwd':>8} " + " ".join(
      f"{'dW ' + n:>11}" for n in names) + "  max rel. diff vs xla")
  rng = np.random.default_rng(0)
  for size, cin, cout in SHAPES:
    x = jnp.asarray(rng.normal(size=(FLAGS.batch, size, size, cin)),
                    jnp.float32)
    dy = jnp.asarray(rng.normal(size=(FLAGS.batch, size, size, cout)),
                     jnp.float32)
    w = jnp.asarray(rng.normal(size=(3, 3, cin, cout)) * 0.1, jnp.float32)
    time_ms = lambda f, *a: 1e3 * best_time(
        lambda: jax.block_until_ready(f(*a)), FLAGS.repeats)
    grad = jax.jit(jax.grad(lambda x, w: jnp.sum(conv(x, w) ** 2), (0, 1)))
    row = [time_ms(jax.jit(conv), x, w), time_ms(grad, x, w)]
    ref = jax.jit(dw_xla)(x, dy, w)
    diffs = []
    for f in (dw_xla, dw_patches, dw_im2col, dw_9dots):
      jf = jax.jit(f)
      row.append(time_ms(jf, x, dy, w))
      diffs.append(float(jnp.max(jnp.abs(jf(x, dy, w) - ref)) /
                         jnp.max(jnp.abs(ref))))
    print(f"{size}²×{cin}→{cout:<5} " + f"{row[0]:>7.1f} {row[1]:>8.1f} " +
          " ".join(f"{t:>11.1f}" for t in row[2:]) + "  " +
          " ".join(f"{d:.0e}" for d in diffs[1:]), flush=True)


if __name__ == "__main__":
  app.run(main)
