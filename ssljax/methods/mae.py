"""MAE (He et al., CVPR 2022): masked auto-encoders, facebookresearch/mae
semantics.

Encoder: the ViT of cfg.model (width, depth, heads, patch size, MLP ratio)
run on the VISIBLE patches only: patch embedding (a linear map of the
flattened p×p×3 patch, = a stride-p conv), fixed 2-D sin-cos position
embeddings (not trained; the CLS position is 0), random masking per example
(argsort of uniform noise, keep ⌊L·(1 − ratio)⌋ patches), a CLS token, the
blocks, a final LayerNorm. Decoder: a linear map to the decoder width, a
learned mask token in every masked slot, un-shuffled to patch order, fixed
sin-cos position embeddings, `mae.decoder_depth` blocks of width
`mae.decoder_width` with `mae.decoder_heads` heads, LayerNorm, a linear map
to p·p·3 pixels per patch.

Loss (float32): per-patch mean squared error, averaged over MASKED patches
only. `mae.norm_pix_loss`: each target patch is normalized by its own mean
and UNBIASED variance (+1e-6 under the square root), as the official
PyTorch code (`jnp.var`'s default is biased: a JAX replication that used it
trailed by points). Targets are the view's normalized pixels; patches
flatten as (row, column, channel), as the official `patchify`.

Initialization as the official code: xavier-uniform weights and zero biases
for every linear map (patch embedding included, as a linear map of the
flattened patch), N(0, 0.02) CLS and mask tokens, LayerNorm 1 / 0. One
difference: PyTorch's fused qkv Linear [D, 3D] draws with bound
√(6 / 4D); Flax's attention has separate q, k, v maps, drawn with
√(6 / 2D).

Evaluation features: the encoder on the full, unmasked image; "rep" is the
CLS token after the final LayerNorm (`mae.pool="cls"`, the official linear
probe) or the mean of the patch tokens after it ("gap"); intermediate
layers: every block's tokens averaged. The online probe reads these full-
image features (`mae.probe_full_image`, one extra forward pass without
gradient) or, if False, the CLS token of the masked forward pass.
Config: mae.{mask_ratio, norm_pix_loss, decoder_width, decoder_depth,
decoder_heads, pool, probe_full_image}; cfg.model must be a ViT.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ssljax import models
from ssljax.methods import base
from ssljax.models.vit import Block
from ssljax.models.vit import sincos_2d

POOLS = ("cls", "gap")
_xavier = nn.initializers.xavier_uniform()


def default_config():
  return ml_collections.ConfigDict(dict(mae=dict(
      mask_ratio=0.75, norm_pix_loss=True, decoder_width=512,
      decoder_depth=8, decoder_heads=16, pool="cls", probe_full_image=True)))


def patchify(x_nhwc, p):
  """[n, H, W, 3] -> [n, (H/p)·(W/p), p·p·3], patches in row-major order."""
  n, h, w, c = x_nhwc.shape
  x = x_nhwc.reshape(n, h // p, p, w // p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, (h // p) * (w // p), p * p * c)


def unpatchify(x_nlk, p, c=3):
  n, l, _ = x_nlk.shape
  g = int(round(l ** 0.5))
  x = x_nlk.reshape(n, g, g, p, p, c).transpose(0, 1, 3, 2, 4, 5)
  return x.reshape(n, g * p, g * p, c)


def random_masking(key, n, num_patches, ratio):
  """(ids_keep [n, K], mask [n, L] with 1 = masked, ids_restore [n, L]),
  K = ⌊L·(1 − ratio)⌋, by argsort of uniform noise per example."""
  keep = int(num_patches * (1 - ratio))
  ids_shuffle = jnp.argsort(jax.random.uniform(key, (n, num_patches)),
                            axis=1)
  ids_restore = jnp.argsort(ids_shuffle, axis=1)
  mask = jnp.ones((n, num_patches)).at[:, :keep].set(0.0)
  return ids_shuffle[:, :keep], jnp.take_along_axis(mask, ids_restore,
                                                    axis=1), ids_restore


def mae_loss(pred_nlk, target_nlk, mask_nl, norm_pix_loss=True):
  """Official forward_loss, in float32: MSE per patch over masked ones."""
  pred = pred_nlk.astype(jnp.float32)
  target = target_nlk.astype(jnp.float32)
  if norm_pix_loss:
    mean = target.mean(axis=-1, keepdims=True)
    var = target.var(axis=-1, keepdims=True, ddof=1)  # unbiased, as torch
    target = (target - mean) / (var + 1e-6) ** 0.5
  loss_nl = jnp.mean(jnp.square(pred - target), axis=-1)
  return jnp.sum(loss_nl * mask_nl) / jnp.sum(mask_nl)


class MAE(nn.Module):
  """Encoder on visible patches + light decoder; see the module docstring."""
  width: int
  depth: int
  num_heads: int
  patch_size: int
  mlp_ratio: int = 4
  decoder_width: int = 512
  decoder_depth: int = 8
  decoder_heads: int = 16
  pool: str = "cls"
  dtype: Any = jnp.float32

  def setup(self):
    dense = lambda f, name: nn.Dense(f, kernel_init=_xavier, dtype=self.dtype,
                                     name=name)
    self.patch_embed = dense(self.width, "patch_embed")
    self.cls_token = self.param("cls_token", nn.initializers.normal(0.02),
                                (1, 1, self.width))
    self.blocks = [Block(self.num_heads, self.mlp_ratio, self.dtype, _xavier,
                         name=f"block{i + 1}") for i in range(self.depth)]
    self.norm = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="norm")
    self.decoder_embed = dense(self.decoder_width, "decoder_embed")
    self.mask_token = self.param("mask_token", nn.initializers.normal(0.02),
                                 (1, 1, self.decoder_width))
    self.decoder_blocks = [
        Block(self.decoder_heads, self.mlp_ratio, self.dtype, _xavier,
              name=f"decoder_block{i + 1}")
        for i in range(self.decoder_depth)]
    self.decoder_norm = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype,
                                     name="decoder_norm")
    self.decoder_pred = dense(self.patch_size ** 2 * 3, "decoder_pred")

  def _embed(self, x_nhwc):
    patches = patchify(x_nhwc.astype(self.dtype), self.patch_size)
    grid = x_nhwc.shape[1] // self.patch_size
    pos = jnp.asarray(sincos_2d(grid, self.width), self.dtype)
    return self.patch_embed(patches) + pos[None]

  def _encode(self, tokens_nld):
    n = tokens_nld.shape[0]
    cls = jnp.broadcast_to(self.cls_token.astype(self.dtype),
                           (n, 1, self.width))  # its position embedding is 0
    x = jnp.concatenate([cls, tokens_nld], axis=1)
    inter = {}
    for i, block in enumerate(self.blocks):
      x = block(x)
      inter[f"block{i + 1}"] = x
    return self.norm(x), inter

  def __call__(self, views, train=True, key=None, mask_ratio=0.75):
    """(pred [n, L, p·p·3] float32, mask [n, L], encoded [n, 1+K, D]).
    key=None (init): a fixed key."""
    del train  # no dropout / BN
    x = views[0]
    tokens = self._embed(x)
    n, num_patches, _ = tokens.shape
    ids_keep, mask, ids_restore = random_masking(
        key if key is not None else jax.random.PRNGKey(0), n, num_patches,
        mask_ratio)
    visible = jnp.take_along_axis(tokens, ids_keep[..., None], axis=1)
    latent, _ = self._encode(visible)
    y = self.decoder_embed(latent)
    masked = jnp.broadcast_to(self.mask_token.astype(self.dtype),
                              (n, num_patches - ids_keep.shape[1],
                               self.decoder_width))
    y_ = jnp.concatenate([y[:, 1:], masked], axis=1)
    y_ = jnp.take_along_axis(y_, ids_restore[..., None], axis=1)  # unshuffle
    grid = x.shape[1] // self.patch_size
    pos = jnp.asarray(sincos_2d(grid, self.decoder_width), self.dtype)
    y = jnp.concatenate([y[:, :1], y_ + pos[None]], axis=1)
    for block in self.decoder_blocks:
      y = block(y)
    pred = self.decoder_pred(self.decoder_norm(y))[:, 1:]
    return pred.astype(jnp.float32), mask, latent

  def represent(self, x, layers=False):
    latent, inter = self._encode(self._embed(x))
    rep = latent[:, 0] if self.pool == "cls" else latent[:, 1:].mean(axis=1)
    out = {"rep": rep.astype(jnp.float32)}
    if layers:
      for name, h in inter.items():
        out[name] = h.astype(jnp.float32).mean(axis=1)
    return out


def build(cfg):
  vit = models.from_config(cfg.model)
  if not isinstance(vit, models.ViT):
    raise ValueError(f"MAE needs a ViT encoder; model.name is "
                     f"{cfg.model.name!r}. Valid: "
                     f"{', '.join(n for n in models.ENCODERS if 'vit' in n)}.")
  m = cfg.mae
  if m.pool not in POOLS:
    raise ValueError(f"Unknown mae.pool {m.pool!r}; valid: "
                     f"{', '.join(POOLS)}.")
  if not 0 < m.mask_ratio < 1:
    raise ValueError(f"mae.mask_ratio = {m.mask_ratio}: must be in (0, 1).")
  for name, w in (("model width", vit.width),
                  ("mae.decoder_width", m.decoder_width)):
    if w % 4:
      raise ValueError(f"{name} = {w}: MAE's sin-cos position embeddings "
                       "need a multiple of 4.")
  return MAE(vit.width, vit.depth, vit.num_heads, vit.patch_size,
             vit.mlp_ratio, m.decoder_width, m.decoder_depth,
             m.decoder_heads, m.pool, vit.dtype)


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  m = cfg.mae

  def loss_fn(variables, state, views, key):
    x = views[0]
    pred, mask, latent = net.apply(variables, views, key=key,
                                   mask_ratio=m.mask_ratio)
    loss = mae_loss(pred, patchify(x, net.patch_size), mask, m.norm_pix_loss)
    if m.probe_full_image:
      rep = net.apply(variables, x, method="represent")["rep"]
    else:
      rep = latent[:, 0].astype(jnp.float32)
    metrics = {"loss": loss, "mask_fraction": jnp.mean(mask)}
    return loss, base.LossAux(metrics, variables["batch_stats"], state, rep)

  return base.Objective(loss_fn)
