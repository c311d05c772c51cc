"""Vision Transformer trunks (Dosovitskiy et al. 2021), pre-norm.

Parameter counts match timm's trunks without a head (ViT-B/16: 85,798,656).
`pool="cls"` uses a class token; `pool="gap"` drops it and averages the patch
tokens after the final LayerNorm. `drop_path` is the stochastic depth of
timm's ViT (used by MAE / DeiT fine-tuning): block i of L drops each residual
branch per example with probability drop_path·i/(L−1) (0 for the first
block), scaling the kept ones by 1/(1−p); only with `train=True`, from the
"dropout" RNG stream. The learned position embedding is defined on
the `image_size` grid and bicubically resized for other input sizes (e.g. the
96 px local crops of multi-crop), as DINO does.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np


def sincos_2d(grid, dim):
  """Fixed [grid², dim] embedding: half the channels encode the column,
  half the row (the order of MAE's official get_2d_sincos_pos_embed; MAE
  and I-JEPA use it, and export writes it as timm's pos_embed)."""
  if dim % 4:
    raise ValueError(f"Sin-cos position embeddings need a width divisible by 4; "
                     f"got {dim}.")
  omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4))
  rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

  def one_d(pos):
    out = pos.reshape(-1)[:, None] * omega[None]
    return np.concatenate([np.sin(out), np.cos(out)], axis=1)

  return np.concatenate([one_d(cols), one_d(rows)], axis=1).astype(
      np.float32)


def drop_path(module, x, rate, train):
  """Per-example stochastic depth of a residual branch x [n, ...]."""
  if not train or rate == 0.0:
    return x
  keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - rate,
                              (x.shape[0],) + (1,) * (x.ndim - 1))
  return jnp.where(keep, x / (1.0 - rate), 0.0).astype(x.dtype)


class Block(nn.Module):
  """Pre-norm transformer block. `kernel_init` for every linear map
  (default Flax's LeCun normal; MAE passes xavier-uniform); `drop_rate`
  the stochastic depth of both residual branches (train only)."""
  num_heads: int
  mlp_ratio: int
  dtype: Any
  kernel_init: Any = nn.linear.default_kernel_init
  drop_rate: float = 0.0

  @nn.compact
  def __call__(self, x, train=False, mask=None):
    """mask: None or bool [n, 1, T, T] / broadcastable, True = may attend."""
    d = x.shape[-1]
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln1")(x)
    y = nn.MultiHeadDotProductAttention(
        self.num_heads, dtype=self.dtype, kernel_init=self.kernel_init,
        name="attn")(y, y, mask=mask)
    x = x + drop_path(self, y, self.drop_rate, train)
    y = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln2")(x)
    y = nn.Dense(d * self.mlp_ratio, dtype=self.dtype,
                 kernel_init=self.kernel_init, name="fc1")(y)
    y = nn.Dense(d, dtype=self.dtype, kernel_init=self.kernel_init,
                 name="fc2")(nn.gelu(y, approximate=False))
    return x + drop_path(self, y, self.drop_rate, train)


class ViT(nn.Module):
  """Returns (representation [n, D], {"block1".."blockL": tokens [n, T, D]})."""
  width: int
  depth: int
  num_heads: int
  patch_size: int = 16
  image_size: int = 224
  mlp_ratio: int = 4
  pool: str = "cls"
  dtype: Any = jnp.float32
  drop_path: float = 0.0

  @nn.compact
  def __call__(self, x, train=False, token_mask=None, tokens=False,
               token_ids=None):
    """token_ids: None or int [n, K] patch indices (raster order): only
    those tokens, with their positions, enter the blocks (I-JEPA's context
    encoder runs on its context alone). token_mask: None or bool over the
    tokens that enter ([n, gh·gw], or [n, K] with token_ids): only those
    are attended to and pooled (the others' outputs are meaningless).
    tokens=True returns the final-LayerNorm tokens [n, T or K, D] in place
    of the pooled representation."""
    if not 0.0 <= self.drop_path < 1.0:
      raise ValueError(f"drop_path = {self.drop_path}: must be in [0, 1).")
    if self.pool not in ("cls", "gap"):
      raise ValueError(f"Unknown pool {self.pool!r}; valid: cls, gap.")
    p = self.patch_size
    x = nn.Conv(self.width, (p, p), (p, p), padding="VALID", dtype=self.dtype,
                name="patch_embed")(x.astype(self.dtype))
    n, gh, gw, d = x.shape
    grid = self.image_size // p
    pos = self.param("pos_embed", nn.initializers.normal(0.02),
                     (1, grid, grid, d))
    if (gh, gw) != (grid, grid):
      pos = jax.image.resize(pos, (1, gh, gw, d), "bicubic")
    x = (x + pos.astype(self.dtype)).reshape(n, gh * gw, d)
    if token_ids is not None:
      x = jnp.take_along_axis(x, token_ids[..., None], axis=1)
    if self.pool == "cls":
      cls = self.param("cls_token", nn.initializers.normal(1e-6), (1, 1, d))
      cls = cls + self.param("cls_pos_embed", nn.initializers.normal(0.02),
                             (1, 1, d))
      x = jnp.concatenate([jnp.broadcast_to(cls, (n, 1, d)).astype(self.dtype),
                           x], axis=1)
    keep = None
    if token_mask is not None:
      keep = token_mask.astype(bool)
      if self.pool == "cls":
        keep = jnp.concatenate([jnp.ones((n, 1), bool), keep], axis=1)
    attn_mask = None if keep is None else keep[:, None, None, :]
    inter = {}
    for i in range(self.depth):
      rate = self.drop_path * i / max(self.depth - 1, 1)
      x = Block(self.num_heads, self.mlp_ratio, self.dtype, drop_rate=rate,
                name=f"block{i + 1}")(x, train, attn_mask)
      inter[f"block{i + 1}"] = x
    x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="ln_final")(x)
    if tokens:
      return x, inter
    if self.pool == "cls":
      rep = x[:, 0]
    elif keep is None:
      rep = jnp.mean(x, axis=1)
    else:
      w = keep[..., None].astype(x.dtype)
      rep = jnp.sum(x * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1)
    return rep, inter
