"""`ssljax-eval`: evaluate a saved checkpoint of a pretraining run.

  ssljax-eval --workdir=/tmp/qs [--step=N]

Reads WORKDIR/config.json, restores the checkpoint (newest, or --step), and
runs the kNN monitor and the offline linear probe on the encoder's
representations. Prints a table and writes WORKDIR/eval_step<N>.json.
"""

import json
import os

from absl import app
from absl import flags

from ssljax import checkpoint
from ssljax import monitor
from ssljax import train
import ssljax.data

flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: newest).")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


def evaluate(workdir, step=None):
  if not os.path.exists(os.path.join(workdir, "config.json")):
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir (run ssljax-train first).")
  cfg = checkpoint.load_config(workdir)
  d = cfg.data
  train_src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  test_src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  s = train.setup(cfg, len(train_src), monitor.num_classes(
      train_src, d.label_key))
  mngr = checkpoint.manager(workdir, cfg.checkpoint)
  steps = mngr.all_steps()
  if not steps:
    raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints.")
  step = max(steps) if step is None else step
  if step not in steps:
    raise ValueError(f"No checkpoint at step {step}; available: "
                     f"{', '.join(map(str, sorted(steps)))}.")
  state = checkpoint.restore(mngr, step, train.init_state(s, cfg.seed))
  results = monitor.Evaluator(cfg, s, train_src, test_src).summary(state)
  path = os.path.join(workdir, f"eval_step{step}.json")
  with open(path + ".tmp", "w") as f:
    json.dump(results, f, indent=1)
  os.replace(path + ".tmp", path)
  return results, path


def main(argv):
  del argv
  results, path = evaluate(FLAGS.workdir, FLAGS.step)
  for k, v in results.items():
    print(f"{k:<28} {v:.4f}" if isinstance(v, float) else f"{k:<28} {v}")
  print(f"written to {path}")


def run():
  app.run(main)


if __name__ == "__main__":
  run()
