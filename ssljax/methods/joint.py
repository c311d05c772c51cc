"""The network joint-embedding methods share: encoder + projector (+ predictor).

Used by VICReg, MVEB, BYOL and SimCLR, each with its own head conventions
(their files). Views are encoded one at a time so BatchNorm statistics are
per view, as in the reference implementations (VICReg, BYOL, MVEB apply the
backbone to each view separately).
"""

from typing import Any, Optional

import flax.linen as nn
import jax.numpy as jnp

from ssljax import models
from ssljax.methods import base


class JointEmbedding(nn.Module):
  """Returns a dict of lists (one entry per view): "rep" encoder
  representations, "z" projector outputs (float32), and "p" predictor
  outputs (only with a predictor)."""
  encoder: nn.Module
  projector: Optional[nn.Module]
  predictor: Optional[nn.Module] = None

  @nn.compact
  def __call__(self, views, train=True):
    out = {"rep": [], "z": []}
    if self.predictor is not None:
      out["p"] = []
    for x in views:
      rep, _ = self.encoder(x, train=train)
      out["rep"].append(rep)
      z = self.projector(rep, train=train) if self.projector else rep
      out["z"].append(z.astype(jnp.promote_types(z.dtype, jnp.float32)))
      if self.predictor is not None:
        out["p"].append(self.predictor(z, train=train))
    return out

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg, projector, predictor=None):
  """JointEmbedding for cfg.model with MLP heads from kwargs of models.MLP."""
  encoder = models.from_config(cfg.model)
  # The heads follow the encoder's PyTorch conventions (BN, init) if set.
  torch = {k: getattr(encoder, k, False)
           for k in ("unbiased_running_var", "torch_init")}
  mlp = lambda kw: models.MLP(**kw, dtype=encoder.dtype, **torch) if (
      kw) else None
  return JointEmbedding(encoder=encoder, projector=mlp(projector),
                        predictor=mlp(predictor))


def forward(net, variables, views):
  """Train-mode outputs on `views` and the updated BatchNorm statistics."""
  out, new = net.apply(variables, views, train=True, mutable=["batch_stats"])
  return out, new["batch_stats"]
