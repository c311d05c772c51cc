"""`ssljax-eval`: evaluate a saved checkpoint of a pretraining run.

  ssljax-eval --workdir=/tmp/qs [--step=N] [--evals=linear,knn,ncc,cdnv,...]

Reads WORKDIR/config.json, restores the checkpoint (newest, or --step; step 0
is the random initialization from the config's seed), extracts features of
the train and eval splits once, and runs the requested evaluations (names:
ssljax.evals.EVALS; default cfg.eval.cli). Prints a table (rows
layer/level/labels, one column per metric) and writes
WORKDIR/checkpoints/eval_step<N>.json: {"step", "evals", "results"}.
"""

import json
import os

from absl import app
from absl import flags

from ssljax import checkpoint
from ssljax import evals
from ssljax import monitor
from ssljax import train
import ssljax.data

FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run as the CLI, so scripts can import load/evaluate and
  # define their own --workdir.
  flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest; 0: "
                       "the random initialization).")
  flags.DEFINE_string("evals", None, "Comma-separated evaluations; valid: "
                      + ", ".join(evals.EVALS) + ". Default: cfg.eval.cli.")
  flags.mark_flag_as_required("workdir")


def load(workdir, step=None):
  """(cfg, Setup, state at `step`, Evaluator, step) of a workdir."""
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir (run ssljax-train first).")
  cfg = checkpoint.load_config(workdir)
  d = cfg.data
  train_src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  test_src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  s = train.setup(cfg, len(train_src), monitor.num_classes(
      train_src, d.label_key))
  state = train.init_state(s, cfg.seed)
  if step != 0:
    mngr = checkpoint.manager(workdir, cfg.checkpoint)
    steps = mngr.all_steps()
    if not steps:
      raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints.")
    step = max(steps) if step is None else step
    if step not in steps:
      raise ValueError(f"No checkpoint at step {step}; available: 0 (random "
                       f"init), {', '.join(map(str, sorted(steps)))}.")
    state = checkpoint.restore(mngr, step, state)
  return cfg, s, state, monitor.Evaluator(cfg, s, train_src, test_src), step


def evaluate(workdir, step=None, names=None):
  """Runs `names` (default cfg.eval.cli) on checkpoint `step`; returns
  (results dict, path of the JSON written next to the checkpoints)."""
  cfg, _, state, evaluator, step = load(workdir, step)
  names = evals.parse(names or monitor.eval_config(cfg)["cli"])
  results = evaluator.run(state, names)
  path = os.path.join(workdir, "checkpoints", f"eval_step{step}.json")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path + ".tmp", "w") as f:
    json.dump({"step": step, "evals": list(names), "results": results}, f,
              indent=1)
  os.replace(path + ".tmp", path)  # never a half-written result
  return results, path


def main(argv):
  del argv
  results, path = evaluate(FLAGS.workdir, FLAGS.step, FLAGS.evals)
  print(evals.table(results))
  for k, v in results.items():
    if k.count("/") != 3:
      print(f"{k:<28} {v:.4f}")
  print(f"written to {path}")


def run():
  _define_flags()
  app.run(main)


if __name__ == "__main__":
  run()
