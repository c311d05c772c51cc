"""Barlow Twins (Zbontar et al., ICML 2021): redundancy reduction.

Two global views, no EMA, no predictor. Projector as in the official code
(facebookresearch/barlowtwins): Linear without bias + BN + ReLU on hidden
layers, last Linear without bias (ResNet-50 recipe 8192-8192-8192). Loss
`ssljax.losses.barlow_twins`: the cross-correlation of the two views'
embeddings, each standardized per dimension over the GLOBAL batch (the
official BatchNorm1d(affine=False) is synced), summed over its entries
with the off-diagonal weighted by `loss.lambd` (0.0051, tuned for d =
8192). Local views, if any, are encoded but not used by the loss (the
paper has none). Config: projector, loss.lambd.
"""

import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="8192-8192-8192", loss=dict(lambd=0.0051)))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=False,
                               last_bias=False))


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  lambd = cfg.loss.lambd
  if lambd < 0:
    raise ValueError(f"loss.lambd = {lambd}: must be >= 0.")

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    loss, metrics = losses.barlow_twins(out["z"][0], out["z"][1],
                                        lambd=lambd)
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn)
