"""Which conditions change the bits of a CPU training run?

  python benchmarks/determinism.py                       # baseline
  taskset -c 0 python benchmarks/determinism.py          # one core
  XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 python benchmarks/determinism.py
  (run the baseline again beside a CPU-heavy job: "under load")

Trains 20 steps of a small VICReg (ResNet-18 width 8, 32 px, batch 32, on
hierarchical_shapes/32_small, built in a temp data_dir) and prints a hash
of the final parameters. Measured 2026-11-23 on the 2-core machine:
baseline, under load and max ISA AVX2 gave the same hash (4df7ca1da76440a5);
one core (7467630fe669beb1) and SSE4_2 (7fc5f07796dd8c5a) differed.
"""

import hashlib
import os
import sys
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jax  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position

from ssljax import train  # pylint: disable=g-import-not-at-top,wrong-import-position
from tests import helpers  # pylint: disable=g-import-not-at-top,wrong-import-position


def main():
  data_dir = os.environ.get("SSLJAX_BENCH_DATA_DIR") or tempfile.mkdtemp()
  cfg = helpers.tiny_config(data_dir, num_steps=20)
  cfg.data.image_size, cfg.model.width = 32, 8
  state = train.train_and_evaluate(cfg, tempfile.mkdtemp())
  h = hashlib.sha256()
  for x in jax.tree.leaves(jax.device_get(state.params)):
    h.update(np.asarray(x).tobytes())
  print(f"parameter hash after 20 steps: {h.hexdigest()[:16]}")


if __name__ == "__main__":
  main()
