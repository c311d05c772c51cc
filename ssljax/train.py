"""SSL pretraining: the loop around the train step, from config to summary.

`train_and_evaluate(cfg, workdir)`: validate the config, load the data,
build the state (ssljax.train_state) and the jitted step
(ssljax.train_step), resume from the newest checkpoint, then train:
metrics, evaluations and checkpoints at their intervals, a clean stop on
preemption, the summary evaluation of the random init and of the trained
encoder. Nothing here names a method. The host syncs with the device only
at logging, evaluation and checkpoint steps.
"""

import time

from absl import logging
from etils import epath
import jax
import numpy as np

from ssljax import checkpoint
from ssljax import files
from ssljax import monitor
from ssljax import perf
from ssljax import preemption
from ssljax import saved_runs
from ssljax import train_state
from ssljax import train_step
from ssljax import validate
from ssljax import workdir as workdir_lib
import ssljax.data
from ssljax.data import clustered
from ssljax.data import pipeline


class NonFiniteError(FloatingPointError):
  pass


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


def _check_resumable(mngr, state):
  """NetworkMismatch when --override_config changed the networks' shapes:
  every checkpoint would fail to restore, which is no damage."""
  steps = mngr.all_steps()
  if not steps:
    return
  try:
    checkpoint.check_networks(
        mngr, max(steps), {"params": state.params,
                           "batch_stats": state.batch_stats},
        hint="--override_config may change how a run trains, not the "
        "shapes of its networks: resume with the config the checkpoint was "
        "trained with, or start a new --workdir.")
  except checkpoint.NetworkMismatch:
    raise
  except Exception:  # pylint: disable=broad-except
    pass  # a damaged newest checkpoint: restore_latest falls back


def _train(cfg, workdir, override_config, guard, lock):
  d = cfg.data
  # The data first: a missing dataset or key writes nothing to the workdir.
  train_src = ssljax.data.load_source(d.dataset, d.train_split, d.data_dir)
  test_src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  keys = {"data.label_key": d.label_key, "eval.coarse_label_keys":
          monitor.eval_config(cfg)["coarse_label_keys"]}
  for src, split in ((train_src, d.train_split), (test_src, d.eval_split)):
    ssljax.data.check_keys(src, keys, dataset=d.dataset, split=split)
  if (epath.Path(workdir) / saved_runs.IMPORTED_MARK).exists():
    raise validate.ConfigError(
        f"{workdir} was made by ssljax-import: it holds an encoder's weights "
        "for evaluation, no training state to resume. To train from them, "
        f"pass --config.downstream.init_from={workdir} to a downstream "
        "config (linear or finetune), or pretrain in a new --workdir.")
  checkpoint.check_config(workdir, cfg, override_config)
  if d.get("cache"):
    train_src = ssljax.data.InMemory(train_src)
  num_classes = monitor.num_classes(train_src, d.label_key)
  pretrain_src = pretraining_source(cfg, train_src)
  s = train_state.setup(cfg, len(pretrain_src), num_classes)
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
      crops=pipeline.crops_from_config(d), seed=train_step.data_seed(cfg),
      label_keys=train_step.label_keys(cfg), worker_count=d.worker_count,
      num_threads=d.num_threads, clusters=clustered.from_config(d))
  mngr = checkpoint.manager(workdir, cfg.checkpoint)
  state = train_state.init_state(s, cfg.seed)
  evaluator = monitor.Evaluator(
      cfg, monitor.make_represent(s.net, d, s.mesh, s.dtype), s.mesh,
      train_src, test_src)

  guard.stop_if_requested()
  if override_config:
    _check_resumable(mngr, state)
  state, resumed = checkpoint.restore_latest(mngr, state, it)
  checkpoint.write_config(workdir, cfg)  # the state restored: now it is ours
  loaded = []
  if not resumed:
    state, loaded = train_state.with_pretrained(s, state)
    for source in loaded:
      logging.info("Initialized from %s, checkpoint %d.", source["workdir"],
                   source["step"])
  step = int(state.step)
  guard.stop_if_requested(step if resumed else None)
  writer = monitor.Writer(workdir, enabled=jax.process_index() == 0,
                          resume_step=step)
  try:
    if not resumed and loaded:  # where the weights came from, for good
      writer.summary["initialized_from"] = loaded
      writer.write_summary()
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
  step_fn = train_step.jit_train_step(s)
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
