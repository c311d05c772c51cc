"""Matrix-based Rényi entropy timings on this machine: forward + backward.

  python benchmarks/entropy.py [--sizes=128,512,2048] [--alphas=1.01,2]
                               [--dim=256]

Times the RD-AE rate term as `ssljax.methods.rdae` computes it: the
mutual information I_α(gram(x), gram(y)) of n samples of dimension --dim,
with the median bandwidth of x shared by both Grams, differentiated w.r.t.
y (jit, float32, best of several calls after a warm-up). Three entropies
per call: S(A), S(B), S(A, B). α = 2 takes the Frobenius path (O(n²) after
the O(n²d) Grams); other α take `eigvalsh` (three n×n eigendecompositions,
O(n³)), so the last column, one bare `eigh` of an n×n matrix, shows what
dominates there.
"""

import os

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from ssljax import entropy
from timing import best_time  # benchmarks/timing.py

flags.DEFINE_list("sizes", ["128", "512", "2048"], "Batch sizes n.")
flags.DEFINE_list("alphas", ["1.01", "2"], "Rényi orders.")
flags.DEFINE_integer("dim", 256, "Sample dimension d.")
FLAGS = flags.FLAGS


def rate(x, y, alpha):
  sigma = entropy.median_bandwidth(x)
  return entropy.matrix_mutual_information(entropy.gram(x, sigma),
                                           entropy.gram(y, sigma), alpha)


def main(_):
  print(f"{jax.device_count()} device(s), {jax.devices()[0].platform}, "
        f"d = {FLAGS.dim}; forward + backward of I_α w.r.t. y; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
  print(f"{'n':>6} {'alpha':>6} {'fwd ms':>9} {'fwd+bwd ms':>11} "
        f"{'one eigh ms':>12}")
  for n in map(int, FLAGS.sizes):
    kx, ky = jax.random.split(jax.random.key(0))
    x = jax.random.normal(kx, (n, FLAGS.dim))
    y = x + 0.5 * jax.random.normal(ky, (n, FLAGS.dim))
    repeats = 2 if n >= 2048 else 10
    a = entropy.normalize_gram(entropy.gram(x, entropy.median_bandwidth(x)))
    eigh = jax.jit(jnp.linalg.eigh)
    t_eigh = best_time(lambda: jax.block_until_ready(eigh(a)), repeats)
    for alpha in map(float, FLAGS.alphas):
      fwd = jax.jit(lambda x, y, alpha=alpha: rate(x, y, alpha))
      both = jax.jit(jax.value_and_grad(
          lambda y, x, alpha=alpha: rate(x, y, alpha)))
      t_f = best_time(lambda: jax.block_until_ready(fwd(x, y)), repeats)
      t_b = best_time(lambda: jax.block_until_ready(both(y, x)), repeats)
      print(f"{n:>6} {alpha:>6g} {t_f * 1e3:>9.1f} {t_b * 1e3:>11.1f} "
            f"{t_eigh * 1e3:>12.1f}", flush=True)


if __name__ == "__main__":
  app.run(main)
