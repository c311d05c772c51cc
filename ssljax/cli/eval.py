"""`ssljax-eval`: evaluate a saved checkpoint of a pretraining run.

  ssljax-eval --workdir=/tmp/qs [--step=N] [--evals=linear,knn,ncc,cdnv,...]

Reads WORKDIR/config.json, restores the checkpoint (newest, or --step; step 0
is the random initialization from the config's seed and encoder_seed),
extracts features of the train and eval splits once, and runs the requested
evaluations (names: ssljax.evals.EVALS; default cfg.eval.cli). Prints a
table (rows layer/level/labels, one column per metric) and writes
WORKDIR/checkpoints/eval_step<N>.json: {"step", "evals", "results"}, merged
with what earlier calls wrote there (results recomputed now replace theirs,
the others stay; "evals" lists every evaluation run on that step). The
library function behind it: ssljax.saved_runs.evaluate.
"""

import sys

from absl import app
from absl import flags

from ssljax import evals
from ssljax import runtime
from ssljax import saved_runs
from ssljax.cli import common
from ssljax.cli import flagparse

FLAGS = flags.FLAGS


def _define_flags():
  flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest; 0: "
                       "the random initialization).")
  flags.DEFINE_string("evals", None, "Comma-separated evaluations; valid: "
                      + ", ".join(evals.EVALS) + ". Default: cfg.eval.cli.")
  flags.DEFINE_string("compilation_cache", runtime.default_compilation_cache(),
                      "Persistent XLA compilation cache folder (local or "
                      "gs://; empty: off).")
  flags.DEFINE_bool("traceback", False, "On an error, print the whole "
                    "traceback, not one line.")
  flags.mark_flag_as_required("workdir")


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  runtime.use_compilation_cache(FLAGS.compilation_cache)
  if FLAGS.evals:  # checked before anything is loaded
    common.report_errors(lambda: evals.parse(FLAGS.evals), "ssljax-eval",
                         FLAGS.traceback)
  results, path = common.report_errors(
      lambda: saved_runs.evaluate(FLAGS.workdir, FLAGS.step, FLAGS.evals),
      "ssljax-eval", FLAGS.traceback)
  print(evals.table(results))
  for k, v in results.items():
    if k.count("/") != 3:
      print(f"{k:<28} {v:.4f}")
  print(f"written to {path}")


def run():
  _define_flags()
  module = __name__ if __name__ != "__main__" else sys.argv[0]
  app.run(main, flags_parser=flagparse.parser("ssljax-eval", __doc__,
                                                 module))


if __name__ == "__main__":
  run()
