"""What every method shares: the network that maps views to embeddings.

A method is a module (one file) exposing
  EMA: bool                      -- keeps an EMA target network if True
  heads(cfg) -> dict             -- projector / predictor specs for SSLModel
  loss(out, target, cfg, mesh) -> (loss, metrics)
where `out = SSLModel(...).apply(...)` on all views, `target` is the EMA
network's output on the global views (None when EMA is False) and `mesh` the
device mesh (for estimators that work per device).
"""

from typing import Any, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssljax.models import MLP


class SSLModel(nn.Module):
  """Encoder + projector (+ predictor) + online linear probe.

  Views are encoded one at a time so BatchNorm statistics are per view, as in
  the reference implementations (VICReg, BYOL, MVEB apply the backbone to
  each view separately).

  Returns a dict of lists (one entry per view):
    "rep": encoder representations; "z": projector outputs (float32);
    "p": predictor outputs (only with a predictor);
    and "logits": probe logits on stop_gradient(rep of view 0).
  """
  encoder: nn.Module
  projector: Optional[MLP]
  predictor: Optional[MLP] = None
  num_classes: int = 0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, views, train=True):
    out = {"rep": [], "z": []}
    if self.predictor is not None:
      out["p"] = []
    for x in views:
      rep, _ = self.encoder(x, train=train)
      out["rep"].append(rep)
      z = self.projector(rep, train=train) if self.projector else rep
      out["z"].append(z.astype(jnp.float32))
      if self.predictor is not None:
        out["p"].append(self.predictor(z, train=train))
    if self.num_classes:
      probe = nn.Dense(self.num_classes, name="probe")
      out["logits"] = probe(jax.lax.stop_gradient(
          out["rep"][0]).astype(jnp.float32))
    return out

  def represent(self, x, layers=False):
    """Eval-mode features: {"rep": representation} and, with `layers`, every
    intermediate (ResNet stage maps, ViT block tokens) global-average-pooled
    over its spatial / token axes, all float32 [n, width]."""
    rep, mid = self.encoder(x, train=False)
    out = {"rep": rep.astype(jnp.float32)}
    if layers:
      for name, h in mid.items():
        out[name] = h.astype(jnp.float32).mean(axis=tuple(
            range(1, h.ndim - 1)))
    return out
