"""Timing helper shared by the benchmark scripts (run as `python
benchmarks/NAME.py`, so this folder is on sys.path)."""

import time


def best_time(fn, repeats):
  """Seconds of the fastest of `repeats` calls of fn, after one warm-up
  call (compilation). fn must block until its result is ready."""
  fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return min(times)
