"""Barlow Twins (Zbontar et al., ICML 2021): redundancy reduction.

Two global views, no EMA, no predictor. Projector as in the official code
(facebookresearch/barlowtwins): Linear without bias + BN + ReLU on hidden
layers, last Linear without bias (ResNet-50 recipe 8192-8192-8192). Loss
`ssljax.losses.barlow_twins`: the cross-correlation of the two views'
embeddings, each standardized per dimension over the GLOBAL batch (the
official BatchNorm1d(affine=False) is synced), summed over its entries
with the off-diagonal weighted by `loss.lambd` (0.0051, tuned for d =
8192). Local views, if any, are encoded but not used by the loss (the
paper has none). Config: projector, loss.lambd, loss.ddp_world_size.

The gradient's scale. The official step divides the cross-correlation by
the global batch and all-reduces it, a sum autograd does not see: each of
the W GPUs back-propagates only its own share, and DDP then averages the
W gradients, so the applied gradient is the true gradient / W (W = 32 in
the paper's runs: 2048 images, 64 per GPU). ssljax differentiates the
global loss: the true gradient, whatever the hardware. `loss.
ddp_world_size` = W divides the gradient by W to reproduce a W-GPU
official run (the logged loss stays the true one); 1 (default): the true
gradient. Under LARS the trust ratio hides the scale for the adapted
weights' gradient but not against their weight decay, nor for biases and
BN parameters (W× larger steps at 1). The ImageNet recipe sets 32.
"""

import ml_collections

from ssljax import losses
from ssljax.methods import base
from ssljax.methods import joint


def default_config():
  return ml_collections.ConfigDict(dict(
      projector="8192-8192-8192", loss=dict(lambd=0.0051, ddp_world_size=1)))


def build(cfg):
  return joint.build(cfg, dict(spec=cfg.projector, hidden_bias=False,
                               last_bias=False))


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  lambd = cfg.loss.lambd
  if lambd < 0:
    raise ValueError(f"loss.lambd = {lambd}: must be >= 0.")
  world = cfg.loss.get("ddp_world_size", 1)
  if not (isinstance(world, int) and world >= 1):
    raise ValueError(f"loss.ddp_world_size = {world!r}: must be an integer "
                     ">= 1 (the official run's GPU count; 1: the true "
                     "gradient).")

  def loss_fn(variables, state, views, key):
    del key
    out, stats = joint.forward(net, variables, views)
    loss, metrics = losses.barlow_twins(out["z"][0], out["z"][1],
                                        lambd=lambd)
    # The metrics keep the true loss; only the gradient is scaled.
    return loss / world, base.LossAux(metrics, stats, state, out["rep"][0])

  return base.Objective(loss_fn)
