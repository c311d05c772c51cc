"""SimCLR (Chen et al., ICML 2020): contrastive learning, NT-Xent.

No EMA, no predictor. Projector as in google-research/simclr: Linear (no
bias) + BN + ReLU on hidden layers, last Linear (no bias) + BN
(2048-2048-128 is the v2 head, 2048-128 the paper's v1). Loss
`ssljax.losses.nt_xent` over the GLOBAL batch (negatives from every
device). Config: projector, loss.temperature (0.1 at batch 4096 in the
paper's ResNet-50 runs), and three fields for the official step, which
configs/simclr_resnet50_imagenet.py sets:
  concat_views (False)   the official step encodes the two views as one
                         batch: BN statistics over 2N (False: per view,
                         as VICReg, BYOL, MVEB)
  head.last_bn_scale     the official last BN learns a scale (center=False,
    (False)              scale=True); without it no affine parameters: a
                         per-dimension scale before NT-Xent's L2
                         normalization changes the geometry only by that
  head.init_std (0.0)    the official head's kernels are N(0, 0.01²);
                         0: Flax's default (LeCun normal)
"""

import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="2048-2048-128", loss=dict(temperature=0.1),
      concat_views=False, head=dict(init_std=0.0, last_bn_scale=False)))


def build(cfg):
  head = cfg.get("head", {})
  return joint.build(cfg, dict(
      spec=cfg.projector, hidden_bias=False, last_bias=False, last_bn=True,
      init_std=float(head.get("init_std", 0.0)),
      last_bn_scale=bool(head.get("last_bn_scale", False))))


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
