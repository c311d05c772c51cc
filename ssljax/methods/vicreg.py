"""VICReg (Bardes, Ponce, LeCun, ICLR 2022): variance-invariance-covariance.

Two global views, no EMA, no predictor. Projector as in the official code:
Linear (bias) + BN + ReLU on hidden layers, last Linear without bias
(official ResNet-50 recipe: 8192-8192-8192). Loss: `ssljax.losses.vicreg`
(std term halved per view, unbiased variance, off-diagonal covariance squared,
summed and divided by d), over the global batch.
"""

from ssljax import losses

EMA = False


def heads(cfg):
  return {"projector": dict(spec=cfg.projector, hidden_bias=True,
                            last_bias=False)}


def loss(out, target, cfg, mesh=None):
  del target, mesh
  z1, z2 = out["z"][0], out["z"][1]
  return losses.vicreg(z1, z2, sim_coeff=cfg.loss.sim_coeff,
                       std_coeff=cfg.loss.std_coeff,
                       cov_coeff=cfg.loss.cov_coeff)
