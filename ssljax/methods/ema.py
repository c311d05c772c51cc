"""EMA target networks (BYOL, MVEB, ...): a helper methods opt into.

A method that keeps a target network puts `ema.init(variables)` in its
state and calls `ema.update` from its `update_state`:

  target.params      <- m · target.params + (1 − m) · params   (new params)
  target.batch_stats <- batch_stats                            (copied)

as BYOL's and MVEB's official code (BN statistics are not averaged; the
target runs in train mode on its own batch anyway). Momentum schedules
(cfg.ema.schedule):
  "cosine":   m(t) = 1 − (1 − base)·(cos(πt/T) + 1)/2, base -> 1 (BYOL)
  "linear":   m(t) = base + (1 − base)·t/T (I-JEPA)
  "constant": m(t) = base (MoCo)
"""

import jax
import jax.numpy as jnp
import ml_collections

SCHEDULES = ("cosine", "linear", "constant")


def default_config(base=0.996, schedule="cosine"):
  return ml_collections.ConfigDict(dict(base=base, schedule=schedule))


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


def update(target, variables, m):
  return {"params": jax.tree.map(lambda e, p: m * e + (1 - m) * p,
                                 target["params"], variables["params"]),
          "batch_stats": variables["batch_stats"]}


def updater(cfg, total_steps):
  """An `Objective.update_state` for a state {"ema": target, ...}."""
  check(cfg)

  def update_state(state, variables, step):
    m = momentum(cfg, step, total_steps)
    return dict(state, ema=update(state["ema"], variables, m)), {
        "ema_momentum": m}

  return update_state
