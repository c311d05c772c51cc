"""Evaluation timings at ImageNet-probe scale on this machine.

  python benchmarks/evals.py [--n_train=50000 --n_test=10000 --dim=2048]

Synthetic features (Gaussian class clusters, so accuracies are meaningful)
of --classes classes; each evaluation runs in its own subprocess so its peak
resident memory (ru_maxrss) is its own. Reported: the first call (includes
XLA compilation), the best of --repeats further calls, and the peak RSS
minus the RSS after the features were made (= working memory). The linear
probe uses --probe_classes classes (its cost grows with the class count:
each L-BFGS step is a [n, d] x [d, C] product and its transpose).
"""

import json
import resource
import subprocess
import sys
import time

from absl import app
from absl import flags
import numpy as np

flags.DEFINE_integer("n_train", 50_000, "Train features.")
flags.DEFINE_integer("n_test", 10_000, "Test features.")
flags.DEFINE_integer("dim", 2048, "Feature width.")
flags.DEFINE_integer("classes", 1000, "Classes for kNN / NCC / CDNV.")
flags.DEFINE_integer("probe_classes", 100, "Classes for the linear probe.")
flags.DEFINE_integer("repeats", 2, "Timed calls after the first.")
flags.DEFINE_float("noise", 6.0, "Per-coordinate noise std around the "
                   "class means (which are N(0, 1) per coordinate).")
flags.DEFINE_list("evals", ["knn", "ncc", "cdnv", "rankme", "linear"],
                  "Which to time.")
flags.DEFINE_string("one", None, "(internal) run one evaluation, print JSON.")
FLAGS = flags.FLAGS


def _rss_mb():
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _features(classes):
  """Class means N(0, I) plus N(0, noise²·I): noise 6 puts kNN
  accuracies mid-range. Built in place, chunk by chunk, so the peak RSS
  after this is the evaluation's own."""
  rng = np.random.default_rng(0)
  mu = rng.normal(size=(classes, FLAGS.dim)).astype(np.float32)
  out = []
  for n in (FLAGS.n_train, FLAGS.n_test):
    y = rng.integers(0, classes, n)
    x = rng.standard_normal((n, FLAGS.dim), np.float32)
    for i in range(0, n, 4096):
      x[i:i + 4096] *= FLAGS.noise
      x[i:i + 4096] += mu[y[i:i + 4096]]
    out += [x, y]
  return out


def run_one(name):
  from ssljax import evals  # pylint: disable=g-import-not-at-top
  classes = FLAGS.probe_classes if name == "linear" else FLAGS.classes
  xtr, ytr, xte, yte = _features(classes)
  base = _rss_mb()
  fn = {
      "knn": lambda: evals.knn_accuracy(xtr, ytr, xte, yte, k=(20, 200),
                                        temperature=0.07),
      "ncc": lambda: evals.ncc_accuracy(xtr, ytr, xte, yte),
      "cdnv": lambda: evals.cdnv(xtr, ytr),
      "rankme": lambda: evals.rankme(xtr),
      "linear": lambda: evals.linear_probe(xtr, ytr, xte, yte)[
          "test_accuracy"],
  }[name]
  t = time.perf_counter()
  value = fn()
  first = time.perf_counter() - t
  times = []
  for _ in range(FLAGS.repeats if name != "linear" else 0):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  print(json.dumps({"eval": name, "classes": classes, "first_s": first,
                    "best_s": min(times) if times else None,
                    "work_mb": _rss_mb() - base, "value": value}))


def main(argv):
  del argv
  if FLAGS.one:
    run_one(FLAGS.one)
    return
  print(f"train {FLAGS.n_train} x {FLAGS.dim}, test {FLAGS.n_test}; "
        "float32, CPU")
  print(f"{'eval':<8}{'classes':>8}{'first call s':>14}{'best s':>9}"
        f"{'work MB':>9}  value")
  for name in FLAGS.evals:
    out = subprocess.run(
        [sys.executable, __file__, f"--one={name}"] + [
            a for a in sys.argv[1:] if not a.startswith("--evals")],
        check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    best = f"{r['best_s']:.2f}" if r["best_s"] is not None else "-"
    value = r["value"] if not isinstance(r["value"], dict) else ", ".join(
        f"k={k}: {v:.4f}" for k, v in r["value"].items())
    value = f"{value:.4f}" if isinstance(value, float) else value
    print(f"{name:<8}{r['classes']:>8}{r['first_s']:>14.2f}{best:>9}"
          f"{r['work_mb']:>9.0f}  {value}", flush=True)


if __name__ == "__main__":
  app.run(main)
