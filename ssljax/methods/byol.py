"""BYOL (Grill et al., NeurIPS 2020): bootstrap your own latent.

EMA target (encoder + projector; `ssljax.methods.ema`, cosine momentum
base -> 1) on the two global views; online predictor on the projector
output. Projector and predictor: Linear (bias) + BN + ReLU, Linear:
4096-256. The last Linear has a bias unless `last_bias` = False, which is
deepmind-research/byol's (utils/networks.py MLP: with_bias=False) and
what configs/byol_resnet50_imagenet.py sets (default True: earlier runs
and CPU results). Loss `ssljax.losses.byol`: 2 − 2·cos
per direction, the two directions summed, averaged over the batch. The
target runs in train mode (batch statistics of its own batch) and keeps
its own BN running statistics (the EMA covers parameters only), as the
official code.
`ema.independent_init` (default False: the target starts as a copy of
the online network) draws the target's initial weights from their own key,
as the official code (set by configs/byol_resnet50_imagenet.py; the
official code notes that a shared key made no significant difference).
Config: projector, predictor, last_bias, ema.{base, schedule,
independent_init}.

Metrics (all float32 over the global batch, no gradient; `diagnostics`):
loss; cosine, the mean cosine between each online prediction and the
other view's target projection (= 1 − loss/4, computed from the vectors);
z_std_mean, z_std_min and p_std_mean, p_std_min, `base.std_summary` of
the L2-normalized online projections z and predictions p of the two views
(2n rows): 0 = collapse, 1/sqrt(d) = isotropic spread; p_norm, the mean L2
norm of the raw predictions; ema_momentum (the update).
"""

import jax
import jax.numpy as jnp
import ml_collections

from ssljax import losses
from ssljax import ops
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.methods import joint


def default_config():
  c = ml_collections.ConfigDict(dict(
      projector="4096-256", predictor="4096-256", last_bias=True,
      ema=ema.default_config()))
  c.ema.independent_init = False
  return c


def build(cfg):
  out_p, out_z = (str(x).split("-")[-1] for x in (cfg.predictor,
                                                 cfg.projector))
  if out_p != out_z:
    raise ValueError(f"BYOL's predictor must output the projector's width: "
                     f"predictor {cfg.predictor!r} ends in {out_p}, projector "
                     f"{cfg.projector!r} in {out_z}.")
  last = bool(cfg.get("last_bias", True))
  return joint.build(
      cfg, dict(spec=cfg.projector, hidden_bias=True, last_bias=last),
      dict(spec=cfg.predictor, hidden_bias=True, last_bias=last))


def diagnostics(z, p, t):
  """Collapse signs of one BYOL step (module docstring): z, p the online
  projections and predictions of the two views, t the target projections;
  lists of two [n, d] arrays. Float32 scalars, no gradient."""
  z, p, t = jax.lax.stop_gradient((z, p, t))
  f32 = lambda xs: [x.astype(jnp.float32) for x in xs]
  z, p, t = f32(z), f32(p), f32(t)
  pn, tn = [ops.l2_normalize(x) for x in p], [ops.l2_normalize(x) for x in t]
  cosine = (jnp.mean(jnp.sum(pn[0] * tn[1], -1))
            + jnp.mean(jnp.sum(pn[1] * tn[0], -1))) / 2
  p_all = jnp.concatenate(p)
  return dict(cosine=cosine,
              p_norm=jnp.mean(jnp.linalg.norm(p_all, axis=-1)),
              **base.std_summary(jnp.concatenate(z), "z"),
              **base.std_summary(p_all, "p"))


def make_objective(cfg, net, *, mesh=None, total_steps):
  del mesh

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    target, target_stats = joint.forward(net, state["ema"], views[:2])
    target = jax.lax.stop_gradient(target)
    state = ema.with_stats(state, target_stats)
    loss, metrics = losses.byol(out["p"][0], out["p"][1], target["z"][0],
                                target["z"][1])
    metrics.update(diagnostics(out["z"][:2], out["p"][:2], target["z"]))
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  def init_state(variables):
    if cfg.ema.get("independent_init", False):
      # byol_experiment.py splits its key and inits the target on its own.
      variables = net.init(
          jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 2),
          base.sample_views(cfg.data), train=False)
    return {"ema": ema.init(variables)}

  return base.Objective(loss_fn, init_state=init_state,
                        update_state=ema.updater(cfg.ema, total_steps))
