"""`ssljax-eval`: evaluate a saved checkpoint of a pretraining run.

  ssljax-eval --workdir=/tmp/qs [--step=N] [--evals=linear,knn,ncc,cdnv,...]

Reads WORKDIR/config.json, restores the checkpoint (newest, or --step; step 0
is the random initialization from the config's seed and encoder_seed),
extracts features of the train and eval splits once, and runs the requested
evaluations (names: ssljax.evals.EVALS; default cfg.eval.cli). Prints a
table (rows layer/level/labels, one column per metric) and writes
WORKDIR/checkpoints/eval_step<N>.json: {"step", "evals", "results"}, merged
with what earlier calls wrote there (results recomputed now replace theirs,
the others stay; "evals" lists every evaluation run on that step).

The newest checkpoint may be deleted by a run still training in the workdir
(rotation keeps checkpoint.keep) between choosing and restoring it: then the
newest one left is used, up to RESTORE_ATTEMPTS times.
"""

import json
import logging as std_logging

from absl import app
from absl import flags
from absl import logging
from etils import epath
import jax
import orbax.checkpoint as ocp

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
RESTORE_ATTEMPTS = 4
# Evaluations that score features against coarser label levels.
NEEDS_COARSE_LEVELS = ("hierarchy",)


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
  keys = {"data.label_key": d.label_key, "eval.coarse_label_keys":
          monitor.eval_config(cfg)["coarse_label_keys"]}
  if d.get("holdout_classes"):
    keys["data.holdout_key"] = d.get("holdout_key", "label")
  ssljax.data.check_keys(train_src, keys, dataset=d.dataset,
                         split=d.train_split)
  net, init = methods.init_fn(cfg, monitor.num_classes(train_src, d.label_key))
  mesh = pipeline.make_mesh()
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  init = jax.jit(init, out_shardings=repl)
  if step == 0:
    variables = init()
  else:
    variables, step = restore_variables(workdir, step, jax.eval_shape(init),
                                        repl)
  dtype = models.from_config(cfg.model).dtype
  evaluator = monitor.Evaluator(
      cfg, monitor.make_represent(net, d, mesh, dtype), mesh, train_src,
      test_src)
  return cfg, variables, evaluator, step


def restore_variables(workdir, step, shapes, sharding=None):
  """(variables, step) of checkpoint `step` (None: the newest) of a
  workdir: the networks' variables only, in the structure of `shapes`
  (a subset of the saved tree is fine), placed with `sharding` (default
  replicated on the local devices)."""
  if sharding is None:
    sharding = jax.sharding.NamedSharding(pipeline.make_mesh(),
                                          jax.sharding.PartitionSpec())
  like = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding),
      shapes)
  return _restore(_read_only_manager(workdir), workdir, step, like)


class _NotReadOnlyNotice(std_logging.Filter):
  """Drops orbax's "Given directory is read only=..." warning, which every
  read-only CheckpointManager logs unconditionally (nothing is wrong)."""

  def filter(self, record):
    return not str(record.msg).startswith("Given directory is read only")


def _read_only_manager(workdir):
  """A CheckpointManager that only reads, opened without orbax's warnings.

  orbax warns once for each option a read-only manager overrides
  (save_interval_steps, max_to_keep, create, cleanup_tmp_directories):
  `checkpoint.manager(read_only=True)` leaves them at their defaults, so
  4 WARNING lines came with every load. Here they are set as read-only
  needs; the fifth, unconditional notice is filtered.
  """
  options = ocp.CheckpointManagerOptions(
      read_only=True, save_interval_steps=0, max_to_keep=None, create=False,
      cleanup_tmp_directories=False, enable_async_checkpointing=False)
  path = epath.Path(workdir)
  path = path if "://" in str(path) else path.absolute()
  notice = _NotReadOnlyNotice()
  logging.get_absl_logger().addFilter(notice)
  try:
    return ocp.CheckpointManager(path / "checkpoints", options=options)
  finally:
    logging.get_absl_logger().removeFilter(notice)


def _restore(mngr, workdir, step, like):
  """(variables, step) of checkpoint `step`, or of the newest one when
  `step` is None, retrying with the next newest when a running training
  deletes the chosen one (rotation) before it is read."""
  for attempt in range(RESTORE_ATTEMPTS):
    steps = mngr.all_steps()
    if not steps:
      raise FileNotFoundError(f"No checkpoint in {workdir}/checkpoints.")
    chosen = max(steps) if step is None else step
    if chosen not in steps:
      raise ValueError(f"No checkpoint at step {chosen}; available: 0 "
                       "(random init), "
                       f"{', '.join(map(str, sorted(steps)))}.")
    try:
      return checkpoint.restore_variables(mngr, chosen, like), chosen
    except Exception:  # pylint: disable=broad-except
      mngr.reload()
      if (step is not None or chosen in mngr.all_steps()
          or attempt == RESTORE_ATTEMPTS - 1):
        raise  # not rotated away: a real error
      logging.warning("Checkpoint %d was deleted while being read (a run "
                      "still training here rotated it); using the newest "
                      "one left.", chosen)
  raise AssertionError("unreachable")


def _check_levels(cfg, names):
  """ValueError when an evaluation needs coarse label levels that the
  workdir's config does not name."""
  wants = [n for n in names if n in NEEDS_COARSE_LEVELS]
  if wants and not monitor.eval_config(cfg)["coarse_label_keys"]:
    raise ValueError(
        f"--evals {', '.join(wants)} scores features against coarser label "
        "levels, but this workdir's config has eval.coarse_label_keys = () "
        "(none): train with --config.eval.coarse_label_keys=KEY,... (label "
        "keys above data.label_key, fine to coarse, e.g. "
        "coarse_label,super_label for hierarchical_shapes) or drop "
        f"{', '.join(wants)}.")


def _merge(path, step, names, results):
  """The file's earlier results with `results` on top, "evals" the union."""
  old = {}
  if path.exists():
    try:
      old = json.loads(path.read_text())
    except ValueError:
      logging.warning("%s is not JSON; replacing it.", path)
    if not isinstance(old, dict) or old.get("step") != step:
      old = {}
  merged = dict(old.get("results") or {})
  merged.update(results)
  evals_run = list(dict.fromkeys(list(old.get("evals") or []) + list(names)))
  return {"step": step, "evals": evals_run, "results": merged}


def evaluate(workdir, step=None, names=None):
  """Runs `names` (default cfg.eval.cli) on checkpoint `step`; returns
  (results dict, path of the JSON written next to the checkpoints)."""
  if names and (epath.Path(workdir) / "config.json").exists():
    # Asked for by name (a config's own eval.cli may list hierarchy for
    # datasets with and without coarse labels: reverse_ssl.py).
    _check_levels(checkpoint.load_config(workdir), evals.parse(names))
  cfg, variables, evaluator, step = load(workdir, step)
  names = evals.parse(names or monitor.eval_config(cfg)["cli"])
  results = evaluator.run(variables, names)
  path = epath.Path(workdir) / "checkpoints" / f"eval_step{step}.json"
  files.write_atomic(path, json.dumps(  # never a half-written result
      _merge(path, step, names, results), indent=1))
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
