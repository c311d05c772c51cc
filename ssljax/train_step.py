"""The train step: one jitted, sharded update of a TrainState.

Per step: global batch (uint8 crops, sharded over every device) -> on-device
augmentation -> the method's objective (its networks, its loss, its state;
`ssljax.methods.base`) + online probe -> optax update -> the method's state
update (e.g. EMA) -> new state, kept only where every loss, gradient and
new value is finite (cfg.nonfinite). Nothing here names a method; the batch
is sharded over every device, so BatchNorm and loss statistics are over the
global batch. The state it updates: ssljax.train_state.
"""

import functools

import jax
import jax.numpy as jnp
import optax

from ssljax import methods
from ssljax import monitor
from ssljax import ops
from ssljax import train_state
from ssljax.data import augment
from ssljax.data import pipeline
from ssljax.methods import base


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


def augment_key(cfg, state):
  """The step's augmentation key, from data_seed(cfg) as state.rng is from
  cfg.seed: with data.seed unset (or equal to seed) it is the key the
  default run uses."""
  return jax.random.fold_in(train_state.run_rng(data_seed(cfg)), state.step)


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
  state = train_state.state_shardings(s)
  return jax.jit(functools.partial(train_step, s), in_shardings=(state, data),
                 out_shardings=(state, repl), donate_argnums=0)
