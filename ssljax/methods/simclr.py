"""SimCLR (Chen et al., ICML 2020): contrastive learning, NT-Xent.

No EMA, no predictor. Projector as in google-research/simclr (v2 head):
Linear (no bias) + BN + ReLU on hidden layers, last Linear (no bias) + BN
(2048-2048-128). The official last BN keeps a scale (no centre); here it
has no affine parameters: a per-dimension scale before the L2
normalization of NT-Xent changes the geometry only by that scale. Loss `ssljax.losses.nt_xent`
over the GLOBAL batch (negatives from every device), cfg.loss.temperature.
"""

from ssljax import losses

EMA = False


def heads(cfg):
  return {"projector": dict(spec=cfg.projector, hidden_bias=False,
                            last_bias=False, last_bn=True)}


def loss(out, target, cfg, mesh=None):
  del target, mesh
  return losses.nt_xent(out["z"][0], out["z"][1],
                        temperature=cfg.loss.temperature)
