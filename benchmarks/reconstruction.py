"""Learning-by-reconstruction analyses at CIFAR size (D = 3·32·32 = 3072).

  python benchmarks/reconstruction.py [--n=2000]

Times (compile excluded, median of 3) `pca_fit`, `linear_ae_closed_form`
for clean / Gaussian / masking corruption (K = 64) and `alignment`, on
random data with N samples, float32, on this machine's CPU.
"""

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from ssljax.analysis import reconstruction as rec  # pylint: disable=g-import-not-at-top,wrong-import-position


def bench(fn, repeat=3):
  jax.block_until_ready(fn())  # compile
  times = []
  for _ in range(repeat):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    times.append(time.perf_counter() - t)
  return float(np.median(times))


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--n", type=int, default=2000)
  n = parser.parse_args().n
  x_nd = jax.random.normal(jax.random.PRNGKey(0), (n, 3072))
  y_n = jax.random.randint(jax.random.PRNGKey(1), (n,), 0, 10)
  rows = [("pca_fit", lambda: rec.pca_fit(x_nd))]
  for name, kw in (("clean", {}), ("gaussian", {"noise_std": 0.5}),
                   ("mask", {"mask_prob": 0.5, "patch_size": 4,
                             "image_shape": (3, 32, 32)})):
    rows.append((f"linear_ae_closed_form[{name}]",
                 lambda kw=kw: rec.linear_ae_closed_form(x_nd.T, 64, **kw)))
  v_dk = rec.pca_fit(x_nd)[2][:, :256]
  rows.append(("alignment (K=256)", lambda: rec.alignment(x_nd, y_n, v_dk,
                                                          10)))
  print(f"D = 3072, N = {n}, {jax.devices()[0].platform}")
  for name, fn in rows:
    print(f"{name:<34} {bench(fn):8.2f} s")


if __name__ == "__main__":
  main()
