"""BYOL (Grill et al., NeurIPS 2020): bootstrap your own latent.

EMA target (encoder + projector; `ssljax.methods.ema`, cosine momentum
base -> 1) on the two global views; online predictor on the projector
output. Projector and predictor as in deepmind-research/byol: Linear (bias)
+ BN + ReLU, Linear (bias): 4096-256. Loss `ssljax.losses.byol`: 2 − 2·cos
per direction, the two directions summed, averaged over the batch. The
target runs in train mode (batch statistics of its own batch), its BN
running statistics copied from the online network, as the official code.
Config: projector, predictor, ema.{base, schedule}.
"""

import jax
import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="4096-256", predictor="4096-256", ema=ema.default_config()))


def build(cfg):
  out_p, out_z = (str(x).split("-")[-1] for x in (cfg.predictor,
                                                 cfg.projector))
  if out_p != out_z:
    raise ValueError(f"BYOL's predictor must output the projector's width: "
                     f"predictor {cfg.predictor!r} ends in {out_p}, projector "
                     f"{cfg.projector!r} in {out_z}.")
  return joint.build(
      cfg, dict(spec=cfg.projector, hidden_bias=True, last_bias=True),
      dict(spec=cfg.predictor, hidden_bias=True, last_bias=True))


def make_objective(cfg, net, *, mesh=None, total_steps):
  del mesh

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    target, _ = joint.forward(net, state["ema"], views[:2])
    target = jax.lax.stop_gradient(target)
    loss, metrics = losses.byol(out["p"][0], out["p"][1], target["z"][0],
                                target["z"][1])
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn, init_state=lambda v: {"ema": ema.init(v)},
                        update_state=ema.updater(cfg.ema, total_steps))
