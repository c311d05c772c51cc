"""VICReg (Bardes, Ponce, LeCun, ICLR 2022): variance-invariance-covariance.

Two global views, no EMA, no predictor. Projector as in the official code:
Linear (bias) + BN + ReLU on hidden layers, last Linear without bias
(official ResNet-50 recipe: 8192-8192-8192). Loss: `ssljax.losses.vicreg`
(std term halved per view, unbiased variance, off-diagonal covariance squared,
summed and divided by d), over the global batch. Local views, if any, are
encoded but not used by the loss (the paper has none).
Config: projector, loss.{sim_coeff, std_coeff, cov_coeff} (λ, μ, ν).
"""

import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="8192-8192-8192",
      loss=dict(sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0)))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=True,
                               last_bias=False))


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  c = cfg.loss

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    loss, metrics = losses.vicreg(out["z"][0], out["z"][1],
                                  sim_coeff=c.sim_coeff,
                                  std_coeff=c.std_coeff,
                                  cov_coeff=c.cov_coeff)
    return loss, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn)
