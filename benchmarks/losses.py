"""Loss-kernel timings on this machine: forward + backward, float32.

  python benchmarks/losses.py [--torch]

VICReg over n ∈ {256, 1024, 4096} and d ∈ {2048, 8192}; then the MVEB
entropy term (normalize -> vmf_score -> surrogate E, forward + backward
w.r.t. the un-normalized z) for n ∈ {128, 256, 1024, 4096}, d = 2048 (and n = 1024, d = 8192), with
a naive JAX version (full sort for τ, general LU solve) for comparison. FLOPs count the
matrix products only (the rest is O(nd)): with the n×n Gram (n < d) the
forward costs 2·n²·d per view for ZcZcᵀ, the backward 2× that; with the d×d
covariance it is 2·n·d² per view. "peak" is this machine's measured float32
matmul rate (a 4096² jnp.dot), so the last column is the fraction of it.
--torch also times a straightforward PyTorch transcription of the official
VICReg forward (d×d covariance) + backward on the same CPU, and of the MVEB
entropy term (topk for τ, torch.linalg.solve).
"""


from absl import app
from absl import flags
import jax
import jax.numpy as jnp
import numpy as np

from ssljax import losses
from ssljax import ops
from timing import best_time  # benchmarks/timing.py

flags.DEFINE_bool("torch", False, "Also time the PyTorch reference.")
flags.DEFINE_list("sizes", ["256x2048", "256x8192", "1024x2048", "1024x8192",
                            "4096x2048", "4096x8192"], "n x d pairs.")
flags.DEFINE_list("mveb_sizes", ["128x2048", "256x2048", "1024x2048",
                                 "1024x8192", "4096x2048"],
                  "n x d pairs for MVEB.")
FLAGS = flags.FLAGS


def matmul_peak():
  a = jnp.ones((4096, 4096), jnp.float32)
  f = jax.jit(lambda x: x @ x)
  t = best_time(lambda: f(a).block_until_ready(), 5)
  return 2 * 4096**3 / t


def vicreg_flops(n, d):
  per_view = 2 * n * n * d if n < d else 2 * n * d * d
  return 2 * 3 * per_view  # two views; backward ≈ 2× forward


def torch_vicreg_time(n, d, repeats):
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  def off_diagonal(x):
    m = x.shape[0]
    return x.flatten()[:-1].view(m - 1, m + 1)[:, 1:].flatten()

  def loss(x, y):
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = (torch.mean(F.relu(1 - std_x)) / 2
                + torch.mean(F.relu(1 - std_y)) / 2)
    cov_x = (x.T @ x) / (n - 1)
    cov_y = (y.T @ y) / (n - 1)
    cov_loss = (off_diagonal(cov_x).pow_(2).sum().div(d)
                + off_diagonal(cov_y).pow_(2).sum().div(d))
    return 25 * repr_loss + 25 * std_loss + cov_loss

  torch.manual_seed(0)
  x = torch.randn(n, d, requires_grad=True)
  y = torch.randn(n, d, requires_grad=True)

  def step():
    x.grad = y.grad = None
    loss(x, y).backward()

  return best_time(step, repeats)


def _unit(x):
  return x / jnp.linalg.norm(x, axis=-1, keepdims=True)


def mveb_entropy(x, eta=0.01, min_tau=0.1):
  z = _unit(x)
  s_nd, _ = ops.vmf_score(z, eta=eta, min_tau=min_tau)
  return jnp.mean(jnp.sum(jax.lax.stop_gradient(-s_nd) * z, -1))


def naive_mveb_entropy(x, eta=0.01, min_tau=0.1):
  """Full sort for τ and a general solve: what the kernel avoids."""
  z = _unit(x)
  zs = jax.lax.stop_gradient(z)
  n = z.shape[0]
  s_nn = zs @ zs.T
  tau = jnp.maximum(jnp.sort((1 - s_nn).ravel())[::-1][n * n // 2 - 1],
                    min_tau)
  k_nn = jnp.exp(s_nn / tau)
  g = k_nn.sum(1, keepdims=True) * zs / tau
  s_nd = -jnp.linalg.solve(k_nn + eta * jnp.eye(n), g)
  return jnp.mean(jnp.sum(-s_nd * z, -1))


def torch_mveb_time(n, d, repeats, eta=0.01, min_tau=0.1):
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  x = torch.randn(n, d, requires_grad=True)

  def step():
    x.grad = None
    z = F.normalize(x, dim=1)
    with torch.no_grad():
      s = z @ z.T
      tau = torch.topk((1 - s).flatten(), n * n // 2).values[-1]
      tau = torch.clamp(tau, min=min_tau)
      k = torch.exp(s / tau)
      g = k.sum(1, keepdim=True) * z / tau
      score = -torch.linalg.solve(k + eta * torch.eye(n), g)
    (-score * z).sum(1).mean().backward()

  return best_time(step, repeats)


def mveb_table():
  print("\nMVEB entropy term, forward + backward (ms)")
  print(f"{'n':>5} {'d':>5} {'ssljax':>9} {'naive jax':>10}"
        + (f" {'torch':>9} {'torch/ssljax':>12}" if FLAGS.torch else ""))
  fast = jax.jit(jax.grad(mveb_entropy))
  naive = jax.jit(jax.grad(naive_mveb_entropy))
  for size in FLAGS.mveb_sizes:
    n, d = map(int, size.split("x"))
    x = jax.random.normal(jax.random.key(0), (n, d))
    repeats = 3 if n >= 2048 else 10
    t = best_time(lambda: jax.block_until_ready(fast(x)), repeats)
    tn = best_time(lambda: jax.block_until_ready(naive(x)), repeats)
    row = f"{n:>5} {d:>5} {t * 1e3:>9.1f} {tn * 1e3:>10.1f}"
    if FLAGS.torch:
      tt = torch_mveb_time(n, d, repeats)
      row += f" {tt * 1e3:>9.1f} {tt / t:>12.2f}"
    print(row, flush=True)


def main(_):
  peak = matmul_peak()
  print(f"float32 matmul peak (4096² jnp.dot): {peak / 1e9:.1f} GFLOP/s, "
        f"{jax.device_count()} device(s), {jax.devices()[0].platform}")
  head = f"{'n':>5} {'d':>5} {'ssljax ms':>10} {'GFLOP':>8} {'% peak':>7}"
  print(head + (f" {'torch ms':>9} {'torch/ssljax':>12}" if FLAGS.torch
                else ""))
  grad = jax.jit(jax.grad(lambda a, b: losses.vicreg(a, b)[0],
                          argnums=(0, 1)))
  for size in FLAGS.sizes:
    n, d = map(int, size.split("x"))
    key1, key2 = jax.random.split(jax.random.key(0))
    z1 = jax.random.normal(key1, (n, d))
    z2 = jax.random.normal(key2, (n, d))
    flops = vicreg_flops(n, d)
    repeats = 1 if flops > 5e11 else (3 if flops > 5e10 else 10)
    t = best_time(lambda: jax.block_until_ready(grad(z1, z2)), repeats)
    row = (f"{n:>5} {d:>5} {t * 1e3:>10.1f} {flops / 1e9:>8.1f} "
           f"{100 * flops / t / peak:>6.0f}%")
    if FLAGS.torch and n * d * d <= 1024 * 8192**2:
      tt = torch_vicreg_time(n, d, max(1, repeats // 3))
      row += f" {tt * 1e3:>9.1f} {tt / t:>12.2f}"
    elif FLAGS.torch:
      row += f" {'skipped':>9}"  # the d×d path: minutes on 2 cores
    print(row, flush=True)
  mveb_table()


if __name__ == "__main__":
  app.run(main)
