"""Random-walk partner kernel timings on this machine (SAG-VICReg's graph).

  python benchmarks/random_walk.py [--sizes=256x256,...] [--steps=1,4,16]

For n ∈ {256, 1024, 4096} rows (the global batch of both views) and
d ∈ {256, 2048}: the jitted `ops.affinity_graph` alone (Gram, kNN, kernel,
symmetrization: O(n²·d)), then `ops.random_walk_partners` with the "walk"
sampler (t sampled transitions: cumulative sum + t binary searches) for each
t in --steps, and with the "power" sampler (Pᵗ by repeated squaring, then one
draw per row) for t in --power_steps (above n = --power_max_n only the
first of them: a product of two 4096² matrices is 137 GFLOP, seconds on a
CPU). Best of --repeats after a warm-up.
"temp MiB" is XLA's temporary-buffer size of the compiled function
(`memory_analysis`), the memory the kernel needs beyond its input and
output: it grows as n² and must not grow with t.
"""

import functools

from absl import app
from absl import flags
import jax
import jax.numpy as jnp

from ssljax import ops
from timing import best_time  # benchmarks/timing.py

flags.DEFINE_list("sizes", ["256x256", "256x2048", "1024x256", "1024x2048",
                            "4096x256", "4096x2048"], "n x d pairs.")
flags.DEFINE_list("steps", ["1", "4", "16"], "Walk lengths, walk sampler.")
flags.DEFINE_list("power_steps", ["2", "8"], "Walk lengths, power sampler.")
flags.DEFINE_integer("power_max_n", 1024, "Largest n timed at every power "
                     "t; above it only the first.")
flags.DEFINE_integer("repeats", 2, "Timed runs per setting (best kept).")
flags.DEFINE_integer("num_neighbors", 10, "k of the kNN graph.")
FLAGS = flags.FLAGS


def temp_mib(jitted, *args):
  mem = jitted.lower(*args).compile().memory_analysis()
  return getattr(mem, "temp_size_in_bytes", float("nan")) / 2**20


def main(argv):
  del argv
  print(f"devices: {jax.devices()}; k = {FLAGS.num_neighbors}, gaussian "
        "affinity, 2 views; seconds per call (best of "
        f"{FLAGS.repeats})")
  print(f"{'n':>6} {'d':>6} {'what':<14} {'seconds':>9} {'temp MiB':>9}")
  key = jax.random.PRNGKey(0)
  for size in FLAGS.sizes:
    n, d = (int(v) for v in size.split("x"))
    z = jax.random.normal(jax.random.PRNGKey(1), (n, d), jnp.float32)
    graph = jax.jit(functools.partial(ops.affinity_graph,
                                      num_neighbors=FLAGS.num_neighbors))
    rows = [("graph", graph, (z,))]
    power_steps = FLAGS.power_steps
    if n > FLAGS.power_max_n:
      power_steps = power_steps[:1]
    for sampler, steps in (("walk", FLAGS.steps), ("power", power_steps)):
      for t in map(int, steps):
        f = jax.jit(functools.partial(
            ops.random_walk_partners, num_neighbors=FLAGS.num_neighbors,
            steps=t, sampler=sampler))
        rows.append((f"{sampler} t={t}", f, (key, z)))
    for what, f, args in rows:
      run = functools.partial(lambda f, a: jax.block_until_ready(f(*a)), f,
                              args)
      sec = best_time(run, FLAGS.repeats)
      print(f"{n:>6} {d:>6} {what:<14} {sec:>9.4f} {temp_mib(f, *args):>9.1f}",
            flush=True)


if __name__ == "__main__":
  app.run(main)
