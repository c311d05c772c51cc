"""A run's workdir read back: its variables, their evaluation, PyTorch files.

  cfg, variables, step = saved_runs.read_variables(WORKDIR)  # networks only
  cfg, variables, evaluator, step = saved_runs.load(WORKDIR, step=0)
  results, path = saved_runs.evaluate(WORKDIR, names="linear,knn")
  meta = saved_runs.export(WORKDIR, "torchvision", "r50.safetensors")
  path = saved_runs.import_weights("r50.safetensors", cfg, NEW_WORKDIR)

Each rebuilds the networks from the workdir's config.json (step 0 is the
random initialization from its seed and encoder_seed: `methods.init_fn`)
and restores only their variables from the checkpoint: no optimizer, loss
or method state. The console scripts (ssljax.cli) parse flags and call
these; experiments, notebooks (ssljax.results) and the downstream method's
`init_from` call them directly.

The newest checkpoint may be deleted by a run still training in the workdir
(rotation keeps checkpoint.keep) between choosing and restoring it: then the
newest one left is used, up to RESTORE_ATTEMPTS times.

Export writes the encoder of any method as a safetensors state dict for
torchvision.models.resnet18/34/50() ("torchvision") or a timm
VisionTransformer ("timm"); the file's metadata says how to build the model
that loads it with strict=True (e.g. `timm.create_model(
"vit_base_patch16_224")`, or the CIFAR stem's replacements). The online
encoder is exported (BYOL's and MVEB's EMA target are not). Key mapping,
layouts and the classifier (zeros of `num_classes`, 1000 by default so the
default constructors load the file; 0 for none): ssljax.weights.

Import makes an ssljax workdir from such a file: a published checkpoint
the user downloaded (the official VICReg ResNet-50, MAE or DINO ViTs use
these key names) and converted to safetensors, e.g. `safetensors.torch.
save_file(torch.load(p, map_location="cpu")["model"], out)` for MAE's
(its decoder and mask token are ignored: only the encoder is read). The
config gives the model, the data and the evaluations (its model must be the
file's: shapes are checked, one clear error otherwise); the networks are
initialized from the config's seed and the encoder replaced by the file's
weights, saved as checkpoint IMPORTED_STEP (step 0 stays the random init),
with the config as WORKDIR/config.json. ssljax-eval, the diagnostics and
the notebooks read it as any workdir; it holds no optimizer state, so it
is not a pretraining run to resume. A file of a MAE encoder (fixed sin-cos
positions) imports into the mae method; a ViT with learned positions into
any other method with a vit_* model.
"""

import json
import logging as std_logging

from absl import logging
from etils import epath
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp
import safetensors.numpy

from ssljax import checkpoint
from ssljax import evals
from ssljax import files
from ssljax import methods
from ssljax import models
from ssljax import monitor
from ssljax import preemption
from ssljax import torch_files
from ssljax import weights
from ssljax import workdir as workdir_lib
import ssljax.data
from ssljax.data import pipeline

RESTORE_ATTEMPTS = 4
# Evaluations that score features against coarser label levels.
NEEDS_COARSE_LEVELS = ("hierarchy",)
FORMATS = {"torchvision": weights.RESNET, "timm": weights.VIT}
IMPORTED_STEP = 1  # step 0 stays the random init of the config
IMPORTED_MARK = "imported.json"  # ssljax-import made the workdir


# ----------------------------------------------------------------------------
# Variables.
# ----------------------------------------------------------------------------
def _config(workdir):
  if not (epath.Path(workdir) / "config.json").exists():
    raise FileNotFoundError(f"{workdir} has no config.json: not a ssljax "
                            "workdir (run ssljax-train first).")
  return checkpoint.load_config(workdir)


def read_variables(workdir, step=None):
  """(cfg, the networks' variables, step) of a workdir's checkpoint `step`
  (None: the newest; 0: the random init of its config), without the online
  probe (whose class count needs the data) or any training state."""
  cfg = _config(workdir)
  _, init = methods.init_fn(cfg, 2)  # the probe's class count: not read
  if step == 0:
    return cfg, jax.jit(init)(), 0
  like = jax.eval_shape(init)
  like["params"].pop(methods.PROBE, None)
  variables, step = restore_variables(workdir, step, like)
  return cfg, variables, step


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
  """(variables, step) of checkpoint `step`, or of the newest one that
  reads when `step` is None: a damaged newest checkpoint is skipped with
  one warning line (nothing is moved: readers never change a workdir),
  and one deleted by a running training's rotation before it is read is
  replaced by the next newest. checkpoint.DamagedCheckpoints, in one line
  per step, when none reads; NetworkMismatch (a config problem, not
  damage) at once."""
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
    except checkpoint.NetworkMismatch:
      raise
    except Exception as e:  # pylint: disable=broad-except
      mngr.reload()
      if (step is None and chosen not in mngr.all_steps()
          and attempt < RESTORE_ATTEMPTS - 1):
        logging.warning("Checkpoint %d was deleted while being read (a run "
                        "still training here rotated it); using the newest "
                        "one left.", chosen)
        continue
      failed = [(chosen, e)]
      break
  older = [] if step is not None else sorted(
      (s for s in mngr.all_steps() if s < chosen), reverse=True)
  for s in older:
    try:
      variables = checkpoint.restore_variables(mngr, s, like)
    except checkpoint.NetworkMismatch:
      raise
    except Exception as e:  # pylint: disable=broad-except
      failed.append((s, e))
      continue
    for bad, e in failed:
      logging.warning("Checkpoint %d in %s cannot be read (%s).", bad,
                      workdir, checkpoint.first_line(e, 200))
    logging.warning("Using checkpoint %d, the newest that reads (pass "
                    "--step to choose another).", s)
    return variables, s
  lines = "; ".join(f"step {s}: {checkpoint.first_line(e, 200)}"
                    for s, e in failed)
  others = sorted(set(mngr.all_steps()) - {s for s, _ in failed})
  what = (f" Other checkpoints: {', '.join(map(str, others))} (--step=N)."
          if others else "")
  raise checkpoint.DamagedCheckpoints(
      f"Checkpoint{'s' if len(failed) > 1 else ''} in {workdir} cannot be "
      f"read ({lines}).{what} Nothing was changed.")


# ----------------------------------------------------------------------------
# Evaluation.
# ----------------------------------------------------------------------------
def load(workdir, step=None):
  """(cfg, variables at `step`, Evaluator, step) of a workdir: the
  networks' variables with the online probe's, and an Evaluator over the
  config's train and eval splits."""
  cfg = _config(workdir)
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
  """Runs evaluations `names` (comma-separated, ssljax.evals.EVALS; default
  cfg.eval.cli) on checkpoint `step`; returns (results, path of the JSON).

  WORKDIR/checkpoints/eval_step<N>.json holds {"step", "evals",
  "results"}, merged with what earlier calls wrote there (results computed
  now replace theirs, the others stay; "evals" lists every evaluation run
  on that step), written atomically.
  """
  if names and (epath.Path(workdir) / "config.json").exists():
    # Asked for by name (a config's own eval.cli may list hierarchy for
    # datasets with and without coarse labels: reverse_ssl.py).
    _check_levels(checkpoint.load_config(workdir), evals.parse(names))
  guard, check = preemption.command_guard("ssljax-eval")
  with guard:
    cfg, variables, evaluator, step = load(workdir, step)
    names = evals.parse(names or monitor.eval_config(cfg)["cli"])
    results = evaluator.run(variables, names, interrupt=lambda: check(
        "during the evaluation"))
    check("during the evaluation")
    path = epath.Path(workdir) / "checkpoints" / f"eval_step{step}.json"
    files.write_atomic(path, json.dumps(  # never a half-written result
        _merge(path, step, names, results), indent=1))
  return results, str(path)


# ----------------------------------------------------------------------------
# PyTorch files.
# ----------------------------------------------------------------------------
def export(workdir, fmt, out, step=None, num_classes=None, overwrite=False):
  """Writes the encoder of `workdir`'s checkpoint `step` to `out` (a
  .safetensors file, written atomically) in format `fmt` (FORMATS), with
  a classifier of `num_classes` (0: none): a downstream run's trained one
  (its downstream.num_classes by default), else zeros (1000 by default);
  returns the metadata written with it. `out` must not exist unless
  `overwrite` (files.write_output), checked before anything is read."""
  if fmt not in FORMATS:
    raise ValueError(f"Unknown --format {fmt!r}; valid: "
                     f"{', '.join(FORMATS)}.")
  if num_classes is not None and num_classes < 0:
    raise ValueError(f"--num_classes={num_classes}: the classifier's classes,"
                     " ≥ 0 (0: the encoder alone).")
  files.check_output(out, overwrite=overwrite)
  cfg = _config(workdir)
  kind = weights.layout(cfg)
  if FORMATS[fmt] != (weights.RESNET if kind == weights.RESNET
                      else weights.VIT):
    raise ValueError(f"--format={fmt} does not fit model {cfg.model.name!r}"
                     ": ResNets export as torchvision, ViTs as timm.")
  if kind == weights.RESNET and cfg.model.get("width", 64) != 64:
    raise ValueError(f"model.width = {cfg.model.width}: torchvision's "
                     "ResNets have width 64 only, so no torchvision model "
                     "loads this encoder.")
  if num_classes is None:
    num_classes = (cfg.downstream.num_classes if cfg.method == "downstream"
                   else 1000)
  hint = torch_files.loader_hint(cfg, fmt, num_classes)  # before the restore
  guard, check = preemption.command_guard("ssljax-export")
  with guard:
    _, variables, step = read_variables(workdir, step)
    if (kind != weights.MAE
        and methods.ENCODER not in variables["params"]):
      raise ValueError(
          f"A {cfg.method} run has no ResNet or ViT encoder to export (its "
          f"networks: {', '.join(sorted(variables['params']))}); read its "
          "variables with ssljax.saved_runs.read_variables instead.")
    sd = weights.to_state_dict(cfg, variables, num_classes)
    meta = {"format": fmt, "ssljax_step": str(step),
            "ssljax_method": cfg.method,
            "ssljax_model": json.dumps(cfg.model.to_dict()),
            "ssljax_architecture": json.dumps(
                torch_files.architecture(cfg)),
            "load_with": hint}
    check("while reading the checkpoint")
    files.write_output(out, safetensors.numpy.save(sd, metadata=meta),
                       overwrite=overwrite)
  return meta


def import_weights(path, cfg, workdir):
  """Makes `workdir` from the state dict file `path` and config `cfg`;
  returns the path of the checkpoint written."""
  root = epath.Path(workdir)
  workdir_lib.check_not_a_file(workdir)
  if (root / "checkpoints").exists() and any(
      p.name.isdigit() for p in (root / "checkpoints").iterdir()):
    raise ValueError(f"{workdir} already holds checkpoints: import into a "
                     "new --workdir.")
  guard, check = preemption.command_guard("ssljax-import")
  with guard:
    data = epath.Path(path).read_bytes()
    torch_files.check_architecture(torch_files.file_metadata(data), cfg,
                                   path)
    sd = torch_files.read_state_dict(data, path)
    d = cfg.data
    src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
    _, init = methods.init_fn(cfg, monitor.num_classes(src, d.label_key))
    variables = weights.with_state_dict(cfg, jax.jit(init)(), sd)
    bad = [k for k, v in sd.items()
           if np.issubdtype(v.dtype, np.inexact)
           and not np.all(np.isfinite(v.astype(np.float32)))]
    if bad:
      raise FloatingPointError(
          f"{path} holds weights that are not finite ({len(bad)}: "
          f"{', '.join(sorted(bad)[:3])}{' ...' if len(bad) > 3 else ''}): "
          "the file is damaged or came from a diverged run; nothing was "
          "written.")
    workdir_lib.check_usable(workdir)  # creates it: the weights fit
    checkpoint.check_config(workdir, cfg)
    check("while converting the weights")
    mngr = checkpoint.manager(workdir, ml_collections.ConfigDict(
        {"keep": None, "async": False}))
    checkpoint.save(mngr, IMPORTED_STEP,
                    jax.tree.map(jax.numpy.asarray, variables))  # finite only
    mngr.wait_until_finished()
    mngr.close()
    files.write_atomic(root / IMPORTED_MARK, json.dumps(
        {"from": str(path), "step": IMPORTED_STEP}))
    checkpoint.write_config(workdir, cfg)
  return str(root / "checkpoints" / str(IMPORTED_STEP))
