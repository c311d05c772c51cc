"""The network joint-embedding methods share: encoder + projector (+ predictor).

Used by VICReg, MVEB, BYOL and SimCLR, each with its own head conventions
(their files). Views are encoded one at a time so BatchNorm statistics are
per view, as in the reference implementations (VICReg, BYOL, MVEB apply the
backbone to each view separately). With `concat_views` (a method's config
field, read by `build`) consecutive views of one size go through the
encoder in one pass and the heads see all views at once, so BatchNorm
statistics are over those views together: SimCLR's official step
concatenates its two views (BN over 2N). With the encoder's `bn_groups`
G > 1 (BatchNorm statistics per group of examples: SwAV's SyncBN process
groups) every concatenated pass orders its rows group-major first, so that
each of BN's G row blocks holds one group's examples of every view, and
restores view order after.
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
  concat_views: bool = False

  @nn.compact
  def __call__(self, views, train=True):
    if self.concat_views:
      return self._concatenated(views, train)
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

  def _concatenated(self, views, train):
    v, groups = len(views), bn_groups(self.encoder, train)
    rep = encode_by_size(self.encoder, views, train)
    out = {"rep": split_views(rep, v)}
    z = grouped(lambda r: self.projector(r, train=train), rep, v,
                groups) if self.projector else rep
    out["z"] = split_views(z.astype(jnp.promote_types(z.dtype, jnp.float32)),
                           v)
    if self.predictor is not None:
      out["p"] = split_views(grouped(
          lambda x: self.predictor(x, train=train), z, v, groups), v)
    return out

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def encode_by_size(encoder, views, train):
  """The representations of all views, [V·n, C] in view order: one encoder
  pass per run of consecutive views of one size (BatchNorm statistics over
  those views together; the official SimCLR and SwAV forwards)."""
  reps, start = [], 0
  groups = bn_groups(encoder, train)
  for i in range(1, len(views) + 1):
    if i == len(views) or views[i].shape != views[start].shape:
      reps.append(grouped(lambda x: encoder(x, train=train)[0],
                          jnp.concatenate(views[start:i]), i - start,
                          groups))
      start = i
  return jnp.concatenate(reps)


def split_views(x, num_views):
  """[V·n, ...] -> V arrays [n, ...]."""
  return list(jnp.split(x, num_views))


def bn_groups(module, train=True):
  """The module's BatchNorm groups in train mode; 1 in evaluation, where
  BN reads its running statistics and the row order does not matter."""
  return getattr(module, "bn_groups", 1) if train else 1


def group_major(x, num_views, groups):
  """[V·n, ...] in view order -> the same rows ordered (group, view,
  example): group g is examples [g·n/G, (g+1)·n/G) of every view, the
  images of the official SyncBN group g (its GPUs hold consecutive rows
  of the global batch)."""
  if groups == 1:
    return x
  n = x.shape[0] // num_views
  if n % groups:
    raise ValueError(f"model.bn_groups = {groups} does not divide the "
                     f"batch of {n} examples per view: choose a batch_size "
                     "that is a multiple of model.bn_groups.")
  x = x.reshape(num_views, groups, n // groups, *x.shape[1:])
  return jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[3:])


def view_major(x, num_views, groups):
  """The inverse of group_major."""
  if groups == 1:
    return x
  x = x.reshape(groups, num_views, -1, *x.shape[1:])
  return jnp.swapaxes(x, 0, 1).reshape(-1, *x.shape[3:])


def grouped(fn, x, num_views, groups):
  """fn (row-wise but for its BatchNorm) on the V concatenated views `x`
  with each BN group's rows in one block; the result in view order."""
  return view_major(fn(group_major(x, num_views, groups)), num_views, groups)


def head_flags(encoder):
  """The MLP arguments by which heads follow the encoder's PyTorch
  conventions (BN running variance, init) when it has them."""
  flags = {k: getattr(encoder, k, False)
           for k in ("unbiased_running_var", "torch_init", "haiku_init")}
  return dict(flags, bn_groups=bn_groups(encoder))


def build(cfg, projector, predictor=None):
  """JointEmbedding for cfg.model with MLP heads from kwargs of models.MLP
  (and cfg.concat_views, default False)."""
  encoder = models.from_config(cfg.model)
  torch = head_flags(encoder)
  mlp = lambda kw: models.MLP(**kw, dtype=encoder.dtype, **torch) if (
      kw) else None
  return JointEmbedding(encoder=encoder, projector=mlp(projector),
                        predictor=mlp(predictor),
                        concat_views=bool(cfg.get("concat_views", False)))


def forward(net, variables, views):
  """Train-mode outputs on `views` and the updated BatchNorm statistics."""
  out, new = net.apply(variables, views, train=True, mutable=["batch_stats"])
  return out, new["batch_stats"]
