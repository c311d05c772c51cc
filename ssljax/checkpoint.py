"""Checkpoints (orbax): train state + grain iterator state, async, keep last K.

Layout: WORKDIR/checkpoints/<step>/{state,data}; WORKDIR/config.json holds the
config the run started with. Every process' grain iterator is at the same
position (all consume equal batches), so one JSON state serves all of them.
"""

import json
import os

from absl import logging
import jax
import ml_collections
import orbax.checkpoint as ocp

# Fields that change how fast a run goes or how it reports, never its result:
# they may differ between a checkpoint and the run resuming it.
NON_SEMANTIC = ("stop_after_steps", "progress", "log_every", "eval_every",
                "data.worker_count", "data.num_threads", "data.data_dir",
                "checkpoint.keep", "summary_eval", "eval.periodic",
                "eval.cli", "eval.random_seed", "eval.coarse_label_keys")


def manager(workdir, cfg):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=cfg.keep, enable_async_checkpointing=cfg.get("async", True))
  return ocp.CheckpointManager(
      os.path.abspath(os.path.join(workdir, "checkpoints")), options=options)


def save(mngr, step, state, data_iter):
  mngr.save(step, args=ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_iter.get_state())))


def restore(mngr, step, state_like, data_iter=None):
  """Restores `step` into the structure/shardings of `state_like`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iter is not None:
    items["data"] = ocp.args.JsonRestore()
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  if data_iter is not None:
    data_iter.set_state(out["data"])
  return out["state"]


def restore_variables(mngr, step, variables_like):
  """Only the networks' variables {"params", "batch_stats"} of checkpoint
  `step` (no optimizer or method state needed to read them), into the
  structure/shardings of `variables_like`."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, variables_like)
  out = mngr.restore(step, args=ocp.args.Composite(
      state=ocp.args.PyTreeRestore(
          abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(
              abstract), partial_restore=True)))
  return dict(out["state"])


def restore_latest(mngr, state_like, data_iter):
  """(state, True) from the newest checkpoint, or (state_like, False)."""
  step = mngr.latest_step()
  if step is None:
    return state_like, False
  logging.info("Resuming from step %d in %s.", step, mngr.directory)
  return restore(mngr, step, state_like, data_iter), True


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


def config_diff(old, new):
  """Fields that differ between two config dicts, ignoring NON_SEMANTIC."""
  a, b = _flatten(old), _flatten(new)
  keys = sorted((set(a) | set(b)) - set(NON_SEMANTIC))
  return [(k, a.get(k, "<absent>"), b.get(k, "<absent>")) for k in keys
          if a.get(k, "<absent>") != b.get(k, "<absent>")]


def check_config(workdir, cfg, override=False):
  """Refuses to resume a workdir whose checkpoint came from another config."""
  path = os.path.join(workdir, "config.json")
  new = json.loads(cfg.to_json())
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    diff = config_diff(old, new)
    has_ckpt = os.path.isdir(os.path.join(workdir, "checkpoints")) and any(
        n.isdigit() for n in os.listdir(os.path.join(workdir, "checkpoints")))
    if diff and has_ckpt and not override:
      lines = "\n".join(f"  {k}: {o!r} (checkpoint) != {n!r} (now)"
                        for k, o, n in diff)
      raise ValueError(
          f"{workdir} holds a checkpoint from a different config:\n{lines}\n"
          "Use another --workdir, or pass --override_config to resume anyway.")
  if jax.process_index() == 0:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
      json.dump(new, f, indent=1, sort_keys=True)
    os.replace(tmp, path)  # atomic: never a half-written config


def load_config(workdir):
  with open(os.path.join(workdir, "config.json")) as f:
    return ml_collections.ConfigDict(json.load(f))
