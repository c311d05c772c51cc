"""`ssljax-eval`: evaluate a saved checkpoint of a pretraining run.

  ssljax-eval --workdir=/tmp/qs [--step=N] [--evals=linear,knn,ncc,cdnv,...]

Reads WORKDIR/config.json, restores the checkpoint (newest, or --step; step 0
is the random initialization from the config's seed), extracts features of
the train and eval splits once, and runs the requested evaluations (names:
ssljax.evals.EVALS; default cfg.eval.cli). Prints a table (rows
layer/level/labels, one column per metric) and writes
WORKDIR/checkpoints/eval_step<N>.json: {"step", "evals", "results"}.
"""

import functools
import json

from absl import app
from absl import flags
from etils import epath
import jax

from ssljax import checkpoint
from ssljax import cli
from ssljax import evals
from ssljax import files
from ssljax import methods
from ssljax import models
from ssljax import monitor
import ssljax.data
from ssljax.data import pipeline

FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run as the CLI, so scripts can import load/evaluate and
  # define their own --workdir.
  flags.DEFINE_string("workdir", None, "Workdir of a pretraining run.")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: newest; 0: "
                       "the random initialization).")
  flags.DEFINE_string("evals", None, "Comma-separated evaluations; valid: "
                      + ", ".join(evals.EVALS) + ". Default: cfg.eval.cli.")
  flags.DEFINE_string("compilation_cache", cli.default_compilation_cache(),
                      "Persistent XLA compilation cache folder (local or "
                      "gs://; empty: off).")
  flags.mark_flag_as_required("workdir")


def load(workdir, step=None):
  """(cfg, variables at `step`, Evaluator, step) of a workdir.

  Builds the method's networks from the workdir's config and reads only
  their variables from the checkpoint: no optimizer, loss or method state.
  """
  if not (epath.Path(workdir) / "config.json").exists():
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir (run ssljax-train first).")
  cfg = checkpoint.load_config(workdir)
  d = cfg.data
  train_src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  test_src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  net = methods.build(cfg)
  mesh = pipeline.make_mesh()
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  init = jax.jit(functools.partial(
      methods.init_variables, net, methods.sample_views(d),
      monitor.num_classes(train_src, d.label_key), cfg.seed),
                 out_shardings=repl)
  if step == 0:
    variables = init()
  else:
    mngr = checkpoint.manager(workdir, cfg.checkpoint, read_only=True)
    steps = mngr.all_steps()
    if not steps:
      raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints.")
    step = max(steps) if step is None else step
    if step not in steps:
      raise ValueError(f"No checkpoint at step {step}; available: 0 (random "
                       f"init), {', '.join(map(str, sorted(steps)))}.")
    shapes = jax.eval_shape(init)
    variables = checkpoint.restore_variables(mngr, step, jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=repl),
        shapes))
  dtype = models.from_config(cfg.model).dtype
  evaluator = monitor.Evaluator(
      cfg, monitor.make_represent(net, d, mesh, dtype), mesh, train_src,
      test_src)
  return cfg, variables, evaluator, step


def evaluate(workdir, step=None, names=None):
  """Runs `names` (default cfg.eval.cli) on checkpoint `step`; returns
  (results dict, path of the JSON written next to the checkpoints)."""
  cfg, variables, evaluator, step = load(workdir, step)
  names = evals.parse(names or monitor.eval_config(cfg)["cli"])
  results = evaluator.run(variables, names)
  path = epath.Path(workdir) / "checkpoints" / f"eval_step{step}.json"
  files.write_atomic(path, json.dumps(  # never a half-written result
      {"step": step, "evals": list(names), "results": results}, indent=1))
  return results, str(path)


def main(argv):
  del argv
  cli.quiet_library_logs(FLAGS.verbosity)
  cli.use_compilation_cache(FLAGS.compilation_cache)
  if FLAGS.evals:  # checked before anything is loaded
    cli.report_errors(lambda: evals.parse(FLAGS.evals), "ssljax-eval")
  results, path = cli.report_errors(
      lambda: evaluate(FLAGS.workdir, FLAGS.step, FLAGS.evals),
      "ssljax-eval")
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
