"""EMA target networks (BYOL, MVEB, ...): a helper methods opt into.

A method that keeps a target network puts `ema.init(variables)` in its
state, runs the target in train mode and stores the BatchNorm statistics
that forward returns with `ema.with_stats`, and calls `ema.update` from
its `update_state`:

  target.params      <- m · target.params + (1 − m) · params   (new params)
  target.batch_stats    its own running averages (its forwards')

as BYOL's and MVEB's official code: the average covers parameters only;
the target's BN keeps running statistics of the batches it normalizes
(training never reads them: train mode uses the batch's). Momentum
schedules (cfg.ema.schedule), t the step just taken:
  "cosine":   m(t) = 1 − (1 − base)·(cos(πt/T) + 1)/2, base -> 1 (BYOL)
  "linear":   m(t) = base + (1 − base)·t/T (I-JEPA)
  "constant": m(t) = base (MoCo)
cfg.ema.next_step_momentum (False): use m(t + 1) for the update after
step t. MVEB's official code (project/model.py) updates the target at the
start of step t + 1, before the target's forward, from the weights step
t left, with that step's momentum: the same update with the momentum one
step later (BYOL's updates after step t with m(t): the default).
"""

import jax
import jax.numpy as jnp
import ml_collections

SCHEDULES = ("cosine", "linear", "constant")


def default_config(base=0.996, schedule="cosine"):
  return ml_collections.ConfigDict(dict(base=base, schedule=schedule,
                                        next_step_momentum=False))


def check(cfg):
  if cfg.schedule not in SCHEDULES:
    raise ValueError(f"Unknown EMA schedule {cfg.schedule!r}; valid: "
                     f"{', '.join(SCHEDULES)}.")
  if not 0.0 <= cfg.base <= 1.0:
    raise ValueError(f"ema.base = {cfg.base} is not a momentum in [0, 1].")


def momentum(cfg, step, total_steps):
  if cfg.schedule == "constant":
    return jnp.float32(cfg.base)
  base = cfg.base
  if cfg.schedule == "linear":
    return base + (1 - base) * jnp.minimum(step / total_steps, 1.0)
  return 1 - (1 - base) * (jnp.cos(jnp.pi * step / total_steps) + 1) / 2


def init(variables):
  return {"params": variables["params"],
          "batch_stats": variables["batch_stats"]}


def with_stats(state, batch_stats):
  """`state` with the target's BatchNorm statistics after its forward."""
  return dict(state, ema=dict(state["ema"], batch_stats=batch_stats))


def update(target, variables, m):
  return dict(target, params=jax.tree.map(lambda e, p: m * e + (1 - m) * p,
                                          target["params"],
                                          variables["params"]))


def updater(cfg, total_steps):
  """An `Objective.update_state` for a state {"ema": target, ...}."""
  check(cfg)

  offset = 1 if cfg.get("next_step_momentum", False) else 0

  def update_state(state, variables, step):
    m = momentum(cfg, step + offset, total_steps)
    return dict(state, ema=update(state["ema"], variables, m)), {
        "ema_momentum": m}

  return update_state
