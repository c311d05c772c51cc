"""SSL pretraining: one jitted, sharded train step and the loop around it.

Data flow per step: grain host batch (uint8 crops) -> global jax.Arrays sharded
over the mesh's devices -> [jit: on-device augmentation -> the method's
objective (its networks, its loss, its state; `ssljax.methods.base`) +
online probe -> optax update -> the method's state update (e.g. EMA)] -> new
state. Nothing here names a method. Params, optimizer and method state are
replicated, or split over the mesh's "fsdp" axis with `mesh.fsdp` > 1
(`state_shardings`); the batch is sharded over every device, so BatchNorm
and loss statistics are over the global batch. The
host syncs with the device only at logging, evaluation and checkpoint steps.
"""

import dataclasses
import functools
import time
from typing import Any

from absl import logging
import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from ssljax import checkpoint
from ssljax import files
from ssljax import methods
from ssljax import models
from ssljax import monitor
from ssljax import ops
from ssljax import optim
from ssljax import perf
from ssljax import preemption
from ssljax import validate
from ssljax import workdir as workdir_lib
from ssljax.methods import base
import ssljax.data
from ssljax.data import augment
from ssljax.data import clustered
from ssljax.data import pipeline



class NonFiniteError(FloatingPointError):
  pass


# ============================================================================
# State.
# ============================================================================
@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any                # the method's networks + params["probe"]
  batch_stats: Any
  opt_state: Any
  rng: jax.Array             # raw uint32 key, saved in checkpoints
  method_state: Any          # method-owned pytree (EMA target, ...)
  num_skipped: jax.Array     # updates dropped for non-finite loss/grads
  first_nonfinite: jax.Array  # step of the first non-finite loss, or -1


@dataclasses.dataclass(frozen=True)
class Setup:
  """Everything static that the step functions close over."""
  cfg: ml_collections.ConfigDict
  net: Any                   # the method's networks (flax Module)
  objective: methods.Objective
  num_classes: int
  dtype: Any                 # compute dtype of the views
  tx: optax.GradientTransformation
  lr_fn: Any
  specs: tuple
  mesh: jax.sharding.Mesh
  total_steps: int
  steps_per_epoch: int


def _scale_by(lr_scales):
  """Multiplies each leaf's update by its `lr_scales(updates)` float (the
  tree's structure and names decide them, not its values)."""
  def update(updates, state, params=None):
    del params
    return jax.tree.map(lambda u, f: u * f, updates,
                        lr_scales(updates)), state
  return optax.GradientTransformation(lambda _: optax.EmptyState(), update)


def make_optimizer(cfg, total_steps, steps_per_epoch, lr_scales=None):
  """Method optimizer on everything but the probe; AdamW on the probe.
  `lr_scales` (Objective.lr_scales): per-parameter lr multiples; those at
  0 are frozen (optax.set_to_zero: no update and no optimizer state)."""
  tx, lr_fn = optim.make(cfg.optimizer, cfg.batch_size, total_steps,
                         steps_per_epoch)
  probe_tx = optax.adamw(cfg.probe.lr, weight_decay=cfg.probe.weight_decay)
  if lr_scales is None:
    label = lambda params: {k: ("probe" if k == methods.PROBE else "ssl")
                            for k in params}
    return optax.multi_transform({"ssl": tx, "probe": probe_tx},
                                 label), lr_fn

  def label(params):
    return jax.tree_util.tree_map_with_path(
        lambda path, f: ("probe" if path[0].key == methods.PROBE else
                         "frozen" if f == 0 else "ssl"), lr_scales(params))
  return optax.chain(
      optax.multi_transform({"ssl": tx, "probe": probe_tx,
                             "frozen": optax.set_to_zero()}, label),
      _scale_by(lr_scales)), lr_fn


make_mesh = pipeline.make_mesh
# Arrays smaller than this stay replicated under FSDP: splitting them saves
# little memory and costs a gather each.
FSDP_MIN_SIZE = 2**14


def setup(cfg, num_examples, num_classes, mesh=None):
  mesh = mesh or make_mesh(fsdp=(cfg.get("mesh") or {}).get("fsdp", 1))
  validate.check(cfg, num_devices=mesh.size,
                 num_processes=jax.process_count())
  pipeline.host_batch_size(cfg.batch_size, jax.process_count())
  steps_per_epoch = num_examples // cfg.batch_size
  total = cfg.get("num_steps") or int(cfg.num_epochs * steps_per_epoch)
  method = methods.get(cfg.method)
  net = method.build(cfg)
  objective = method.make_objective(cfg, net, mesh=mesh, total_steps=total)
  tx, lr_fn = make_optimizer(cfg, total, steps_per_epoch,
                             objective.lr_scales)
  specs = augment.view_specs(cfg.augment, cfg.data.num_global,
                             cfg.data.num_local)
  dtype = models.from_config(cfg.model).dtype
  return Setup(cfg, net, objective, num_classes, dtype, tx, lr_fn, specs,
               mesh, total, steps_per_epoch)


def leaf_sharding(mesh, x):
  """FSDP's rule for one array: split along "fsdp" on its largest
  dimension divisible by the axis size (ties: the first), replicated when
  the mesh has no "fsdp" axis, the array is small or nothing divides."""
  repl = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  if "fsdp" not in mesh.axis_names or x.size < FSDP_MIN_SIZE:
    return repl
  k = mesh.shape["fsdp"]
  for i in sorted(range(x.ndim), key=lambda i: -x.shape[i]):
    if x.shape[i] % k == 0:
      spec = [None] * x.ndim
      spec[i] = "fsdp"
      return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(
          *spec))
  return repl


def state_shardings(s):
  """Sharding of every leaf of the TrainState (parameters, optimizer and
  method state, BatchNorm statistics: `leaf_sharding`)."""
  shapes = jax.eval_shape(functools.partial(_init, s, 0))
  return jax.tree.map(lambda x: leaf_sharding(s.mesh, x), shapes)


def init_state(s, seed):
  """Initial TrainState, created directly in its sharding (replicated, or
  split along "fsdp")."""
  return jax.jit(functools.partial(_init, s, seed),
                 out_shardings=state_shardings(s))()


def _init(s, seed):
  variables = methods.init_variables(
      s.net, methods.sample_views(s.cfg.data), s.num_classes, seed,
      s.cfg.get("encoder_seed"))
  params, stats = variables["params"], variables["batch_stats"]
  net_params, _ = methods.split_probe(params)
  return TrainState(
      step=jnp.int32(0), params=params, batch_stats=stats,
      opt_state=s.tx.init(params), rng=_run_rng(seed),
      method_state=s.objective.init_state(
          {"params": net_params, "batch_stats": stats}),
      num_skipped=jnp.int32(0), first_nonfinite=jnp.int32(-1))


def with_pretrained(s, state):
  """`state` with the variables Objective.load_pretrained gives (a fresh
  run's start; the optimizer state stays: zeros, whatever the values)."""
  if s.objective.load_pretrained is None:
    return state
  net_params, probe = methods.split_probe(state.params)
  net_params, stats = s.objective.load_pretrained(net_params,
                                                  state.batch_stats)
  put = lambda t, like: jax.device_put(
      jax.tree.map(jnp.asarray, t), jax.tree.map(lambda x: x.sharding, like))
  return state.replace(
      params=put(dict(net_params, **{methods.PROBE: probe}), state.params),
      batch_stats=put(stats, state.batch_stats))


# ============================================================================
# Train step.
# ============================================================================
def _finite(*trees):
  """True iff every float leaf is finite: x * 0 is 0 for finite x and NaN
  for ±Inf / NaN, so one sum says it.

  The flag gates every leaf of the new state, and XLA fuses cheap scalar
  ops into each consumer: behind a plain isfinite(sum), XLA:CPU copied the
  whole chain of per-leaf adds into every leaf's select, quadratic in the
  number of leaves (the I-JEPA step: 1.3M duplicated adds, a compile of
  over 12 minutes and 13.6 GB). A square root is an op XLA will not
  duplicate (sqrt(±0) is finite, sqrt(NaN) is not), so the chain runs
  once; tests/test_train.py counts the checks in a compiled step."""
  total = jnp.float32(0)
  for x in jax.tree.leaves(trees):
    if jnp.issubdtype(x.dtype, jnp.inexact):
      total = total + jnp.sum(x.astype(jnp.float32) * 0)
  return jnp.isfinite(jnp.sqrt(total))


def data_seed(cfg):
  """Seed of the input pipeline (order and crops): data.seed, else
  cfg.seed."""
  seed = cfg.data.get("seed")
  return cfg.seed if seed is None else seed


def label_keys(cfg):
  """The label fields train batches carry: the pipeline's defaults, the
  probe's data.label_key and eval.coarse_label_keys (for the pair
  diagnostics of `ssljax.methods.base.pair_label_metrics`)."""
  return tuple(dict.fromkeys(
      pipeline.LABEL_KEYS + (cfg.data.label_key,)
      + monitor.eval_config(cfg)["coarse_label_keys"]))


def _run_rng(seed):
  """TrainState.rng of a run seeded `seed`: what its draws derive from."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), 2)


def augment_key(cfg, state):
  """The step's augmentation key, from data_seed(cfg) as state.rng is from
  cfg.seed: with data.seed unset (or equal to seed) it is the key the
  default run uses."""
  return jax.random.fold_in(_run_rng(data_seed(cfg)), state.step)


def train_step(s, state, batch):
  cfg = s.cfg
  key = jax.random.fold_in(state.rng, state.step)
  views = augment.augment_views(
      jax.random.fold_in(augment_key(cfg, state), 0), batch, s.specs,
      cfg.data.mean, cfg.data.std, s.dtype)

  def loss_fn(params):
    net_params, probe_params = methods.split_probe(params)
    extra = ({"labels": batch[cfg.data.label_key]}
             if s.objective.uses_labels else {})
    loss, aux = s.objective.loss(
        {"params": net_params, "batch_stats": state.batch_stats},
        state.method_state, views, jax.random.fold_in(key, 1), **extra)
    # Online probe: a linear head on stop-gradient encoder features; its
    # loss reaches only its own parameters.
    logits = methods.probe_logits(probe_params,
                                  jax.lax.stop_gradient(aux.rep))
    labels = batch[cfg.data.label_key]
    ce = optax.softmax_cross_entropy_with_integer_labels(
        logits, labels).mean()
    metrics = dict(aux.metrics, probe_loss=ce, probe_train_accuracy=jnp.mean(
        logits.argmax(-1) == labels))
    # Diagnostics (`ssljax.methods.base`), outside the method's loss.
    metrics.update(base.std_summary(aux.rep, "rep"))
    if aux.pairs is not None:
      # Replicated first: gathering sharded labels with partner indices
      # made XLA:CPU emit an all-gather that deadlocked beside the EMA
      # graph's collectives (tests/methods/test_sag_vicreg.py).
      repl = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec())
      rep = lambda x: jax.lax.with_sharding_constraint(
          jax.lax.stop_gradient(x), repl)
      metrics.update(base.pair_label_metrics(rep(aux.pairs), {
          k: rep(batch[k]) for k in label_keys(cfg) if k in batch}))
    return loss + ce, (loss, metrics, aux)

  grads, (loss, metrics, aux) = jax.grad(loss_fn, has_aux=True)(state.params)
  updates, opt_state = s.tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if s.objective.project_params is not None:  # e.g. unit-norm prototypes
    net_params, probe = methods.split_probe(params)
    params = dict(s.objective.project_params(net_params),
                  **{methods.PROBE: probe})
  method_state, m = s.objective.update_state(
      aux.state, {"params": methods.split_probe(params)[0],
                  "batch_stats": aux.batch_stats}, state.step)
  metrics.update(m)
  new = state.replace(step=state.step + 1, params=params,
                      batch_stats=aux.batch_stats, opt_state=opt_state,
                      method_state=method_state)
  # A non-finite loss, gradient or new state (a finite gradient can still
  # give a NaN update, e.g. with an infinite learning rate) never reaches
  # the state: "skip" drops that update and counts it; "stop" freezes the
  # state from then on and the loop raises at its next sync, so no
  # checkpoint holds a later state.
  ok = jnp.isfinite(loss) & _finite(grads, params, opt_state, method_state,
                                    aux.batch_stats)
  apply = ok if cfg.nonfinite == "skip" else ok & (state.first_nonfinite < 0)
  new = jax.tree.map(lambda a, b: jnp.where(apply, a, b), new,
                     state.replace(step=state.step + 1))
  new = new.replace(
      num_skipped=state.num_skipped + (~ok).astype(jnp.int32),
      first_nonfinite=jnp.where((state.first_nonfinite < 0) & ~ok,
                                state.step, state.first_nonfinite))
  metrics["lr"] = s.lr_fn(state.step)
  metrics["num_skipped"] = new.num_skipped
  return new, metrics


def jit_train_step(s):
  repl = jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec())
  data = jax.sharding.NamedSharding(s.mesh, ops.batch_spec(s.mesh))
  state = state_shardings(s)
  return jax.jit(functools.partial(train_step, s), in_shardings=(state, data),
                 out_shardings=(state, repl), donate_argnums=0)


# ============================================================================
# Loop.
# ============================================================================
def train_and_evaluate(cfg, workdir, override_config=False,
                       force_lock=False):
  """Pretrains per `cfg` in `workdir` (local or gs://; resuming if it holds
  a checkpoint), evaluates, writes metrics.jsonl, TensorBoard events and
  summary.json.

  Validates the config before touching data or compiling; holds the
  workdir's lock (`ssljax.workdir`) for the whole run; on SIGTERM / SIGINT
  checkpoints the step it reached and raises `preemption.Preempted`.
  """
  preemption.begin_run()
  preemption.stop_if_requested()
  validate.check(cfg, num_devices=jax.device_count(),
                 num_processes=jax.process_count())
  main = jax.process_index() == 0
  if main:
    workdir_lib.check_usable(workdir)
  preemption.stop_if_requested()
  with workdir_lib.Lock(workdir, force=force_lock, enabled=main) as lock, \
      preemption.Guard() as guard:
    guard.stop_if_requested()
    try:
      return _train(cfg, workdir, override_config, guard, lock)
    except Exception as e:  # pylint: disable=broad-except
      if not files.disk_full(e) or isinstance(e, files.DiskFull):
        raise
      raise _disk_full_error(workdir, cfg, e) from e


def _disk_full_error(workdir, cfg, e):
  """DiskFull naming the path, the errno and the step a re-run resumes."""
  try:
    steps = checkpoint.manager(workdir, cfg.checkpoint,
                               read_only=True).all_steps()
  except Exception:  # pylint: disable=broad-except
    steps = []
  resume = (f"it resumes from step {max(steps)}" if steps
            else "it starts from step 0 (no checkpoint was complete)")
  where = getattr(e, "filename", None) or f"{workdir}/..."
  return files.DiskFull(
      f"No space left on device while writing {where} "
      f"({checkpoint.first_line(e, 160)}); free space and run the same "
      f"command again: {resume}.")


def pretraining_source(cfg, train_src):
  """The train split without the examples of data.holdout_classes (labels
  of data.holdout_key), which pretraining must never see; evaluation keeps
  the whole split (`ssljax.evals` "unseen" scores those classes alone)."""
  d = cfg.data
  classes = tuple(int(c) for c in d.get("holdout_classes", ()))
  if not classes:
    return train_src
  key = d.get("holdout_key", "label")
  labels = ssljax.data.load_labels(d.dataset, d.train_split, d.data_dir, key)
  missing = sorted(set(classes) - set(np.unique(labels).tolist()))
  if missing:
    raise validate.ConfigError(
        f"data.holdout_classes: {missing} are not {key!r} classes of "
        f"{d.dataset}:{d.train_split} (its classes: {labels.min()}.."
        f"{labels.max()}).")
  src = pipeline.exclude_classes(train_src, classes, labels=labels)
  logging.info("Holding %s classes %s out of pretraining: %d of %d examples "
               "kept.", key, classes, len(src), len(train_src))
  return src


def _train(cfg, workdir, override_config, guard, lock):
  d = cfg.data
  # The data first: a missing dataset or key writes nothing to the workdir.
  train_src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  test_src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  keys = {"data.label_key": d.label_key, "eval.coarse_label_keys":
          monitor.eval_config(cfg)["coarse_label_keys"]}
  for src, split in ((train_src, d.train_split), (test_src, d.eval_split)):
    ssljax.data.check_keys(src, keys, dataset=d.dataset, split=split)
  checkpoint.check_config(workdir, cfg, override_config)
  if d.get("cache"):
    train_src = ssljax.data.InMemory(train_src)
  num_classes = monitor.num_classes(train_src, d.label_key)
  pretrain_src = pretraining_source(cfg, train_src)
  s = setup(cfg, len(pretrain_src), num_classes)
  head = getattr(s.net, "num_classes", num_classes)  # a classifier's head
  if head != num_classes:
    raise validate.ConfigError(
        f"The model's classifier has {head} classes, {d.dataset} has "
        f"{num_classes} ({d.label_key}): set --config.downstream."
        f"num_classes={num_classes}.")
  if s.total_steps < 1:
    raise validate.ConfigError(
        f"Nothing to train: {s.total_steps} steps ({len(pretrain_src)} "
        f"examples, batch_size {cfg.batch_size}, num_epochs "
        f"{cfg.num_epochs}); raise num_epochs or set num_steps.")
  it = pipeline.train_iterator(
      pretrain_src, global_batch=cfg.batch_size,
      crops=pipeline.crops_from_config(d), seed=data_seed(cfg),
      label_keys=label_keys(cfg), worker_count=d.worker_count,
      num_threads=d.num_threads, clusters=clustered.from_config(d))
  mngr = checkpoint.manager(workdir, cfg.checkpoint)
  state = init_state(s, cfg.seed)
  evaluator = monitor.Evaluator(
      cfg, monitor.make_represent(s.net, d, s.mesh, s.dtype), s.mesh,
      train_src, test_src)

  guard.stop_if_requested()
  state, resumed = checkpoint.restore_latest(mngr, state, it)
  if not resumed:
    state = with_pretrained(s, state)
  step = int(state.step)
  guard.stop_if_requested(step if resumed else None)
  writer = monitor.Writer(workdir, enabled=jax.process_index() == 0,
                          resume_step=step)
  try:
    done = writer.summary.get("trained", {}).get("step")
    if step >= s.total_steps and done == step and cfg.summary_eval:
      logging.info("%s finished at step %d; its summary (nothing "
                   "recomputed):", workdir, step)
      monitor.print_summary(writer.summary)
      return state
    if not resumed and cfg.summary_eval:
      writer.summary["random_init"] = evaluator.summary(
          variables(state), 0, interrupt=lambda: guard.stop_if_requested(
              None, "during the evaluation of the random init"))
      writer.write_summary()
    logging.info("Training %s: %d steps (%d/epoch), from step %d.",
                 cfg.method, s.total_steps, s.steps_per_epoch, step)
    state, step = _loop(s, state, step, it, mngr, writer, evaluator, guard,
                        lock)
    if step >= s.total_steps and cfg.summary_eval:
      results = evaluator.summary(
          variables(state), int(state.step), interrupt=lambda: (
              guard.stop_if_requested(step, "during the final evaluation")))
      writer.scalars(step, {f"final/{k}": v for k, v in results.items()
                            if isinstance(v, float)})
      writer.summary["trained"] = results
      writer.write_summary()
      monitor.print_summary(writer.summary)
  finally:
    try:
      writer.close()
    finally:
      _close(mngr)
  return state


def _close(mngr):
  """Ends orbax's async save threads, so an error exit leaves none behind
  (they printed hundreds of 'Event loop is closed' tracebacks at exit)."""
  try:
    mngr.close()
  except Exception as e:  # pylint: disable=broad-except
    # The error that made the run stop is already on its way up.
    logging.warning("Closing the checkpoint manager: %s",
                    checkpoint.first_line(e))


def _loop(s, state, step, it, mngr, writer, evaluator, guard, lock):
  cfg = s.cfg
  step_fn = jit_train_step(s)
  stop_at = s.total_steps
  if cfg.get("stop_after_steps"):
    stop_at = min(stop_at, step + cfg.stop_after_steps)
  progress = monitor.Progress(s.total_steps, step,
                              enabled=cfg.progress and jax.process_index() == 0)
  t_log, step_log = time.perf_counter(), step
  compiled = flops = None
  while step < stop_at:
    batch = pipeline.to_global(next(it), s.mesh)
    if compiled is None:  # compiled once, outside the timed steps
      compiled = step_fn.lower(state, batch).compile()
      flops = perf.compiled_flops(compiled)
      t_log = time.perf_counter()
    state, metrics = compiled(state, batch)
    step += 1
    lock.check(step)
    last = step == stop_at
    if step % cfg.log_every == 0 or last:
      metrics = jax.device_get(metrics)  # host sync: logging steps only
      _check_finite(cfg, state)
      dt = time.perf_counter() - t_log
      n = step - step_log
      metrics.update(step=step, epoch=step / s.steps_per_epoch,
                     seconds_per_step=dt / n,
                     images_per_sec=n * cfg.batch_size / dt,
                     **perf.rates(n, dt, cfg.batch_size, s.mesh.size, flops))
      if flops:
        metrics["flops_per_device_step"] = flops
      writer.scalars(step, metrics)
      progress.update(step, metrics)
      t_log, step_log = time.perf_counter(), step
    if (cfg.eval_every and step % cfg.eval_every == 0) and not last:
      writer.scalars(step, evaluator.monitor(variables(state)))
    saved = step % cfg.checkpoint.every == 0 or last
    if saved:
      _check_finite(cfg, state)
      checkpoint.save(mngr, step, state, it)
    if not last and guard.should_stop(step):
      _check_finite(cfg, state)
      if not saved:
        checkpoint.save(mngr, step, state, it)
      mngr.wait_until_finished()  # synchronous: the process may end now
      progress.close()
      writer.flush()
      raise preemption.Preempted(step, guard.signame)
  progress.close()
  mngr.wait_until_finished()
  skipped = int(state.num_skipped)
  if skipped:
    logging.warning("nonfinite=skip dropped %d of the %d updates so far (the "
                    "first at step %d): a non-finite loss, gradient or "
                    "update; lower the learning rate if that is many.",
                    skipped, step, int(state.first_nonfinite) + 1)
  return state, step


def variables(state):
  """What evaluation needs of a train state: the networks' variables."""
  return {"params": state.params, "batch_stats": state.batch_stats}


def _check_finite(cfg, state):
  bad = int(state.first_nonfinite)
  if bad >= 0 and cfg.nonfinite == "stop":
    raise NonFiniteError(
        f"Non-finite loss, gradient or update at step {bad + 1} (the "
        "metrics' numbering); no update from that "
        "step on was applied and no checkpoint was written after it. "
        "Lower the learning rate, or set --config.nonfinite=skip to drop "
        "such updates and continue.")

