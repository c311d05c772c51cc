"""SimCLR (Chen et al., ICML 2020): contrastive learning, NT-Xent.

No EMA, no predictor. Projector as in google-research/simclr (v2 head):
Linear (no bias) + BN + ReLU on hidden layers, last Linear (no bias) + BN
(2048-2048-128). The official last BN keeps a scale (no centre); here it
has no affine parameters: a per-dimension scale before the L2
normalization of NT-Xent changes the geometry only by that scale. Loss
`ssljax.losses.nt_xent` over the GLOBAL batch (negatives from every
device). Config: projector, loss.temperature (0.1 at batch 4096 in the
paper's ResNet-50 runs).
"""

import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-2048-128", loss=dict(temperature=0.1)))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=False,
                               last_bias=False, last_bn=True))


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  temperature = cfg.loss.temperature
  if temperature <= 0:
    raise ValueError(f"loss.temperature = {temperature}: must be > 0.")

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    loss, metrics = losses.nt_xent(out["z"][0], out["z"][1],
                                   temperature=temperature)
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn)
