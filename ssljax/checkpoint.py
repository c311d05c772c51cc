"""Checkpoints (orbax): train state + grain iterator state, async, keep last K.

Layout: WORKDIR/checkpoints/<step>/{state,data}; WORKDIR/config.json holds the
config the run started with. Every process' grain iterator is at the same
position (all consume equal batches), so one JSON state serves all of them.
Paths go through etils.epath: a workdir may be local or gs://.

Damaged checkpoints: on resume the newest checkpoint that restores is used;
newer ones that fail are moved (never deleted) to
WORKDIR/checkpoints_damaged/<step>, with one log line each saying why.
Unfinished temporary checkpoint folders of an interrupted save are removed
when the manager starts (orbax `cleanup_tmp_directories`).

Integrity: a state is saved only if every leaf is finite (else
NonFiniteState, nothing written), with an "integrity" item holding two
32-bit checksums per array (`fingerprint`, computed on device, so sharded
arrays need no gather). Restore recomputes them and treats a mismatch or a
non-finite restored leaf as damage (moved aside, the next older one tried):
orbax and tensorstore check neither, so a flipped byte in an array file
restored silently before. Checkpoints written before the item existed are
checked for finiteness only.
"""

import json
import time

from absl import logging
from etils import epath
import jax
import jax.numpy as jnp
import ml_collections
import orbax.checkpoint as ocp

from ssljax import files

# Fields that change how fast a run goes, how it reports or where it saves,
# never its result: they may differ between a checkpoint and the run resuming
# it (checkpoint.every: an interrupted run resumes bit-identically, so the
# steps saved along the way do not change the weights; tests/test_train.py).
NON_SEMANTIC = ("stop_after_steps", "progress", "log_every", "eval_every",
                "mesh.fsdp",
                "data.worker_count", "data.num_threads", "data.data_dir",
                "data.cache", "checkpoint.every", "checkpoint.keep",
                "summary_eval", "eval.periodic",
                "eval.cli", "eval.random_seed", "eval.coarse_label_keys")


def _abs(workdir):
  path = epath.Path(workdir)
  return path if "://" in str(path) else path.absolute()


def manager(workdir, cfg, read_only=False):
  options = ocp.CheckpointManagerOptions(
      max_to_keep=cfg.keep, enable_async_checkpointing=cfg.get("async", True),
      cleanup_tmp_directories=not read_only, read_only=read_only)
  return ocp.CheckpointManager(_abs(workdir) / "checkpoints", options=options)


class NonFiniteState(FloatingPointError):
  """A state with NaN / Inf leaves was about to be checkpointed."""


class IntegrityError(ValueError):
  """A restored checkpoint is not what was saved (checksum, NaN / Inf)."""


def _words(x):
  """The array's bits as uint32 words (16- and 8-bit types widened)."""
  if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
    x = jax.random.key_data(x)
  if x.dtype.itemsize != 4:
    x = x.astype(jnp.float32 if jnp.issubdtype(x.dtype, jnp.floating)
                 else jnp.int32)
  return jax.lax.bitcast_convert_type(x, jnp.uint32).ravel()


@jax.jit
def _fingerprint(leaves):
  sums, finite = [], []
  for x in leaves:
    w = _words(x)
    i = jnp.arange(w.size, dtype=jnp.uint32)
    # Odd weights: any single flipped bit changes the first sum (2^k times
    # an odd number is never 0 mod 2^32); the second mixes high and low
    # halves with another weight, so that two flips rarely cancel in both.
    a = jnp.sum(w * (2 * i + 1), dtype=jnp.uint32)
    b = jnp.sum((w ^ (w >> 16)) * (i * jnp.uint32(0x9E3779B1) | 1),
                dtype=jnp.uint32)
    sums.append(jnp.stack([a, b]))
    finite.append(jnp.all(jnp.isfinite(x)) if jnp.issubdtype(
        x.dtype, jnp.inexact) else jnp.bool_(True))
  return jnp.stack(sums), jnp.stack(finite)


def fingerprint(tree):
  """({leaf path: "checksum hex"}, [paths of non-finite leaves]) of a pytree
  of jax.Arrays; one small device-to-host copy."""
  paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(tree)[0])
  sums, finite = jax.device_get(_fingerprint(list(leaves)))
  keys = [jax.tree_util.keystr(p) for p in paths]
  return ({k: f"{int(a):08x}{int(b):08x}" for k, (a, b) in zip(keys, sums)},
          [k for k, ok in zip(keys, finite) if not ok])


def _nonfinite_message(bad):
  shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3
                                else "")
  return f"{len(bad)} arrays hold NaN or Inf ({shown})"


def save(mngr, step, state, data_iter=None):
  """Saves `step` (async) with its checksums and, if given, the grain
  iterator's state; NonFiniteState if any leaf is not finite (nothing
  written)."""
  sums, bad = fingerprint(state)
  if bad:
    raise NonFiniteState(
        f"The state after step {step} is not finite: {_nonfinite_message(bad)}"
        "; it was not checkpointed (the newest checkpoint is still the last "
        "good state). Lower the learning rate or check the data, then run "
        "again.")
  items = {"state": ocp.args.StandardSave(state),
           "integrity": ocp.args.JsonSave({"format": 1, "checksums": sums})}
  if data_iter is not None:
    items["data"] = ocp.args.JsonSave(data_iter.get_state())
  mngr.save(step, args=ocp.args.Composite(**items))


def _has_integrity(mngr, step):
  return (epath.Path(mngr.directory) / str(step) / "integrity").exists()


def verify(tree, expected, prefix=""):
  """Raises IntegrityError if a leaf of `tree` is not finite or its checksum
  differs from `expected` (keys: leaf paths, `prefix` + the tree's own);
  leaves not in `expected` are checked for finiteness only."""
  sums, bad = fingerprint(tree)
  if bad:
    raise IntegrityError(f"restored {_nonfinite_message(bad)}")
  wrong = [k for k, v in sums.items()
           if expected.get(prefix + k, v) != v]
  if wrong:
    raise IntegrityError(
        f"checksum mismatch in {len(wrong)} of {len(sums)} arrays (e.g. "
        f"{wrong[0]}): the files changed after they were written")


def restore(mngr, step, state_like, data_iter=None):
  """Restores `step` into the structure/shardings of `state_like`, checking
  its checksums (IntegrityError on damage)."""
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, state_like)
  items = {"state": ocp.args.StandardRestore(abstract)}
  if data_iter is not None:
    items["data"] = ocp.args.JsonRestore()
  check = _has_integrity(mngr, step)
  if check:
    items["integrity"] = ocp.args.JsonRestore()
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  verify(out["state"], out["integrity"]["checksums"] if check else {})
  if data_iter is not None:
    data_iter.set_state(out["data"])
  return out["state"]


class NetworkMismatch(ValueError):
  """A checkpoint's networks are not the ones its config describes."""


def _leaf_specs(tree):
  """{"params/encoder/...": (shape, dtype name)} of a pytree of arrays or
  array metadata."""
  out = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    name = "/".join(str(getattr(k, "key", k)) for k in path)
    out[name] = (tuple(leaf.shape), jnp.dtype(leaf.dtype).name)
  return out


EDITED_CONFIG = ("The workdir's config.json was edited after training, or "
                 "the checkpoint comes from another run: put back the "
                 "config it was trained with.")


def check_networks(mngr, step, variables_like, optional=("probe",),
                   hint=EDITED_CONFIG):
  """Raises NetworkMismatch unless checkpoint `step` holds exactly the
  arrays of `variables_like` in each of its collections (names, shapes,
  dtypes): restoring a subset would silently drop the rest (a resnet34
  checkpoint read as a resnet18), a superset fails inside orbax. A
  top-level params entry in `optional` (the online probe) may be in the
  checkpoint alone."""
  handler = ocp.PyTreeCheckpointHandler()
  meta = handler.metadata(epath.Path(mngr.directory) / str(step) / "state")
  saved = getattr(meta, "tree", meta)
  have, want = {}, {}
  for col, tree in variables_like.items():
    stored = saved.get(col, {}) or {}
    if col == "params":
      stored = {k: v for k, v in stored.items()
                if k in tree or k not in optional}
    have.update(_leaf_specs({col: stored}))
    want.update(_leaf_specs({col: tree}))
  extra = sorted(set(have) - set(want))
  missing = sorted(set(want) - set(have))
  other = sorted(k for k in set(have) & set(want) if have[k] != want[k])
  if not (extra or missing or other):
    return
  parts = []
  if extra:
    parts.append(f"{len(extra)} arrays the config has no place for (e.g. "
                 f"{extra[0]})")
  if missing:
    parts.append(f"{len(missing)} arrays the config needs are absent (e.g. "
                 f"{missing[0]})")
  if other:
    k = other[0]
    parts.append(f"{len(other)} arrays differ in shape or dtype (e.g. {k}: "
                 f"{have[k][0]} {have[k][1]} saved, {want[k][0]} "
                 f"{want[k][1]} in the config)")
  raise NetworkMismatch(
      f"Checkpoint {step} in {mngr.directory} does not hold the network "
      f"its config describes: {'; '.join(parts)}. {hint}")


def restore_variables(mngr, step, variables_like):
  """Only the networks' variables {"params", "batch_stats"} of checkpoint
  `step` (no optimizer or method state needed to read them), into the
  structure/shardings of `variables_like`, which must be the checkpoint's
  networks exactly (check_networks; the online probe may be left out)."""
  check_networks(mngr, step, variables_like)
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, variables_like)
  items = {"state": ocp.args.PyTreeRestore(
      abstract, restore_args=ocp.checkpoint_utils.construct_restore_args(
          abstract), partial_restore=True)}
  check = _has_integrity(mngr, step)
  if check:
    items["integrity"] = ocp.args.JsonRestore()
  out = mngr.restore(step, args=ocp.args.Composite(**items))
  variables = dict(out["state"])
  # The state's leaf paths are .params[...] where these are ['params'][...].
  expected = {}
  if check:
    for k, v in out["integrity"]["checksums"].items():
      for name in variables:
        if k.startswith(f".{name}["):
          expected[f"['{name}']" + k[len(name) + 1:]] = v
  verify(variables, expected)
  return variables


class DamagedCheckpoints(RuntimeError):
  """No checkpoint of the workdir could be restored."""


def first_line(e, limit=300):
  cause = e.__cause__ or e.__context__
  if "See full TensorStore details" in str(e) and cause is not None:
    return first_line(cause, limit)  # orbax's wrapper hides the reason
  text = f"{type(e).__name__}: {e}".strip().splitlines()[0]
  return text if len(text) <= limit else text[:limit] + " ..."


def restore_latest(mngr, state_like, data_iter):
  """(state, True) from the newest checkpoint that restores, or
  (state_like, False) when there is none. Newer checkpoints that fail are
  moved to ../checkpoints_damaged/ (see the module docstring); if none
  restores, nothing is moved and DamagedCheckpoints says why for each."""
  failed = []
  for step in sorted(mngr.all_steps(), reverse=True):
    try:
      state = restore(mngr, step, state_like, data_iter)
    except Exception as e:  # pylint: disable=broad-except
      # orbax / tensorstore raise many types (ValueError, OSError, KeyError,
      # FileNotFoundError, ...) for a damaged step; say which and try older.
      logging.warning("Checkpoint %d in %s cannot be restored (%s); trying "
                      "an older one.", step, mngr.directory, first_line(e))
      failed.append((step, e))
      continue
    for bad, e in failed:
      _move_aside(mngr, bad, e)
    if failed:
      mngr.reload()
    logging.info("Resuming from step %d in %s.", step, mngr.directory)
    return state, True
  if failed:
    lines = "\n".join(f"  step {s}: {first_line(e)}" for s, e in failed)
    raise DamagedCheckpoints(
        f"No checkpoint in {mngr.directory} can be restored:\n{lines}\n"
        "Nothing was moved or deleted. Start a fresh run in another "
        "--workdir, or move the damaged step folders away to start over "
        "here.")
  return state_like, False


def _move_aside(mngr, step, error):
  src = epath.Path(mngr.directory) / str(step)
  dest_dir = epath.Path(mngr.directory).parent / "checkpoints_damaged"
  dest = dest_dir / f"{step}-{int(time.time())}"
  if jax.process_index() == 0:
    dest_dir.mkdir(parents=True, exist_ok=True)
    src.rename(dest)
    (dest_dir / f"{dest.name}.reason.txt").write_text(first_line(error, 5000))
  logging.warning("Moved damaged checkpoint %d to %s.", step, dest)


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[f"{prefix}{k}"] = list(v) if isinstance(v, tuple) else v
  return out


# Fields added to the defaults after workdirs existed: a config.json without
# one ran as if it held this value, so resuming it is no config change.
ADDED_DEFAULTS = {"data.holdout_key": "label", "data.holdout_classes": [],
                  "optimizer.bias_lr_scale": 1.0, "optimizer.nesterov": False,
                  "optimizer.clip_per_param": 0.0,
                  "optimizer.weight_decay_end": None,
                  "downstream.mixup_alpha": 0.0,
                  "downstream.cutmix_alpha": 0.0,
                  "downstream.mix_switch_prob": 0.5,
                  "downstream.mix_prob": 1.0,
                  "data.seed": None, "encoder_seed": None,
                  "optimizer.lars_lr_after_momentum": False,
                  "loss.ddp_world_size": 1,
                  "optimizer.cosine_over_total": False,
                  "ema.next_step_momentum": False,
                  "optimizer.warmup_linspace": False, "concat_views": False,
                  "head.init_std": 0.0, "head.last_bn_scale": False,
                  "last_bias": True, "head.last_bn_affine": False,
                  "optimizer.larc_clip": False,
                  "optimizer.larc_exclude_bias_norm": False,
                  "ema.independent_init": False, "model.bn_groups": 1}


def config_diff(old, new):
  """Fields that differ between two config dicts, ignoring NON_SEMANTIC."""
  a, b = _flatten(old), _flatten(new)
  keys = sorted((set(a) | set(b)) - set(NON_SEMANTIC))
  get = lambda d, k: d.get(k, ADDED_DEFAULTS.get(k, "<absent>"))
  return [(k, get(a, k), get(b, k)) for k in keys if get(a, k) != get(b, k)]


def check_config(workdir, cfg, override=False):
  """Refuses to resume a workdir whose checkpoint came from another config.
  Writes nothing: write_config records the config once the run holds its
  state (a resume that fails leaves the old config.json)."""
  path = epath.Path(workdir) / "config.json"
  new = json.loads(cfg.to_json())
  if path.exists():
    old = read_config_json(workdir)
    diff = config_diff(old, new)
    ckpt = epath.Path(workdir) / "checkpoints"
    has_ckpt = ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir())
    if diff and has_ckpt and not override:
      lines = "\n".join(f"  {k}: {o!r} (checkpoint) != {n!r} (now)"
                        for k, o, n in diff)
      raise ValueError(
          f"{workdir} holds a checkpoint from a different config:\n{lines}\n"
          "Use another --workdir, or pass --override_config to resume anyway.")


def write_config(workdir, cfg):
  """Writes WORKDIR/config.json (atomically, process 0 only)."""
  if jax.process_index() == 0:
    files.write_atomic(epath.Path(workdir) / "config.json",
                       json.dumps(json.loads(cfg.to_json()), indent=1,
                                  sort_keys=True))


def read_config_json(workdir):
  return files.read_json_object(
      epath.Path(workdir) / "config.json",
      "restore it from a copy, or move it away: the next ssljax-train run "
      "writes it anew from its --config (and resumes the checkpoints "
      "without comparing configs).")


def load_config(workdir):
  return ml_collections.ConfigDict(read_config_json(workdir))
