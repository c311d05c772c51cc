"""I-JEPA (Assran et al., CVPR 2023): predict the target encoder's features of
image blocks from a context block, facebookresearch/ijepa semantics.

Masks (`sample_masks`, the official `MaskCollator` per global batch): one
target block size (h, w) and one context size per batch, each from ONE
uniform draw u that sets both the scale s = lo + u·(hi − lo) and the aspect
a = lo + u·(hi − lo) (the official `_sample_block_size`): max_keep =
⌊H·W·s⌋, h = round(√(max_keep·a)), w = round(√(max_keep/a)), capped at
H − 1 and W − 1; targets: `num_targets` blocks per image at top ~
U{0..H−h−1}, left ~ U{0..W−w−1}; context: one square-aspect block of the
context scale with every target block removed, redrawn until more than
`min_keep` patches remain (after 20 failed draws the last target's
exclusion is dropped, then the one before, as the official
`constrain_mask`); finally every context keeps only its first m patches in
raster order, m the smallest context of the batch (the official collation
truncates to the shortest of each GPU's batch; here of the global batch).

Networks: the context encoder is cfg.model's ViT (pool "gap": the mean of
the final-LayerNorm tokens is the evaluation representation), run on the
context patches only, as the official `apply_masks` does: the m context
tokens are gathered (raster order) and padded to the smallest of the
static lengths T/4, T/2, T that holds them, the padding masked out of
attention; a `lax.switch` picks the length per step, so the step is
compiled for the three and pays for the one it runs (m is one number per
global batch). Each branch is rematerialized (`jax.checkpoint`): the
gradient of a switch otherwise carries the union of every branch's
residuals, zero-filled, and the full-grid branch's made the gathered step
slower than no gathering (benchmarks/ijepa_context.py: 19.5 s vs 17.3 s
per step of 256 before, 7.8 s vs 20.1 s with the remat).
`ijepa.context_gather=False` runs the full grid with attention masking
instead: the same values at the context positions
(tested), for up to 4× the encoder's FLOPs. The predictor (official
`VisionTransformerPredictor`): a linear map to `pred_width`, fixed 2-D
sin-cos positions, a learned mask token (N(0, 0.02)) at each target block's
positions, `pred_depth` blocks with the encoder's head count (one sequence
per target block: the context tokens + that block's mask tokens, padded
to `target_slots`, a static bound on the block size, and masked), a
LayerNorm, a linear map back to the encoder width. The target encoder is
an EMA of the context encoder (momentum linear from `ema.base` 0.996 to 1
over the run, the official `ema: [0.996, 1.0]`), run on the full image;
its final tokens are layer-normalized again without affine (F.layer_norm,
eps 1e-5) and the loss compares the predictions at each target block's
positions with them.

Loss (`ijepa_loss`, float32): the official `F.smooth_l1_loss` (Huber with
δ = 1), averaged over every element of every target block. The paper
writes an L2 loss; `ijepa.loss="l2"` gives that (mean squared error).

Where ssljax departs from the official code: the encoder's position
embeddings are learned (ssljax's ViT, so that exports, imports and every
evaluation read I-JEPA's encoder like any other; the official ones are
fixed sin-cos) and its weights, the predictor's included, use Flax's
initializers, without the official 1/√(2·layer) rescale of the output
projections. Evaluation reads
the context encoder (the trained parameters); the official linear probes
read the target encoder, which the EMA keeps close to it by the end.
Config: ijepa.{pred_width, pred_depth, num_targets, target_scale,
context_scale, aspect, min_keep, loss, context_gather}, ema.{base,
schedule}.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ssljax import models
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.models.vit import Block
from ssljax.models.vit import sincos_2d

LOSSES = ("smooth_l1", "l2")
_TRIES = 20  # the official collator's draws before it relaxes a constraint


def default_config():
  return ml_collections.ConfigDict(dict(
      ijepa=dict(pred_width=384, pred_depth=12, num_targets=4,
                 target_scale=(0.15, 0.2), context_scale=(0.85, 1.0),
                 aspect=(0.75, 1.5), min_keep=10, loss="smooth_l1",
                 context_gather=True),
      ema=ema.default_config(base=0.996, schedule="linear")))


# ----------------------------------------------------------------------------
# Multi-block masks.
# ----------------------------------------------------------------------------
def block_size(u, scale, aspect, grid):
  """(h, w) int32 of the official _sample_block_size for the draw u."""
  s = scale[0] + u * (scale[1] - scale[0])
  keep = jnp.floor(grid * grid * s)
  a = aspect[0] + u * (aspect[1] - aspect[0])
  h = jnp.round(jnp.sqrt(keep * a)).astype(jnp.int32)
  w = jnp.round(jnp.sqrt(keep / a)).astype(jnp.int32)
  return jnp.minimum(h, grid - 1), jnp.minimum(w, grid - 1)


def _blocks(key, shape, h, w, grid):
  """Bool [*shape, grid, grid] blocks of size (h, w) at random corners."""
  k_top, k_left = jax.random.split(key)
  top = jax.random.randint(k_top, shape, 0, grid - h)
  left = jax.random.randint(k_left, shape, 0, grid - w)
  r = jnp.arange(grid)
  rows = (r >= top[..., None]) & (r < top[..., None] + h)
  cols = (r >= left[..., None]) & (r < left[..., None] + w)
  return rows[..., :, None] & cols[..., None, :]


def sample_masks(key, n, grid, cfg):
  """(context [n, T], targets [n, J, T]) bool over the T = grid² patches in
  raster order; cfg: the ijepa config section. See the module docstring."""
  j = cfg.num_targets
  k_size, k_tgt, k_ctx = jax.random.split(key, 3)
  u_tgt, u_ctx = jax.random.uniform(k_size, (2,))
  th, tw = block_size(u_tgt, cfg.target_scale, cfg.aspect, grid)
  ch, cw = block_size(u_ctx, cfg.context_scale, (1.0, 1.0), grid)
  targets = _blocks(k_tgt, (n, j), th, tw, grid)
  # Context candidates: level r allows the first j - r exclusions; the
  # first draw (level-major) with more than min_keep patches wins.
  cands = _blocks(k_ctx, (n, j + 1, _TRIES), ch, cw, grid)
  level = jnp.arange(j + 1)
  excluded = jnp.cumsum(targets, axis=1) > 0  # [n, J, g, g]: union of 1..k
  excl_r = jnp.concatenate(
      [jnp.zeros_like(excluded[:, :1]), excluded], axis=1)  # 0..J targets
  allowed = ~jnp.flip(excl_r, axis=1)[:, level]  # level r: J - r targets
  cands = cands & allowed[:, :, None]
  counts = cands.sum(axis=(-2, -1)).reshape(n, -1)
  first = jnp.argmax(counts > cfg.min_keep, axis=1)
  context = cands.reshape(n, -1, grid, grid)[jnp.arange(n), first]
  context = context.reshape(n, -1)
  m = jnp.min(context.sum(axis=1))
  context = context & (jnp.cumsum(context, axis=1) <= m)
  return context, targets.reshape(n, j, -1)


# ----------------------------------------------------------------------------
# Networks.
# ----------------------------------------------------------------------------
class Predictor(nn.Module):
  """Narrow ViT predicting the features at each target block."""
  width: int
  depth: int
  num_heads: int
  out_width: int
  mlp_ratio: int = 4
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, z_nkd, ctx_ids_nk, ctx_valid_nk, tgt_ids_njb,
               tgt_valid_njb, grid):
    """Predictions [n, J, B, out_width] at the target slots. Context: K
    encoder tokens at patches ctx_ids (only ctx_valid ones are attended
    to); targets: B slots per block at patches tgt_ids (tgt_valid ones)."""
    n, k, _ = z_nkd.shape
    j, b = tgt_ids_njb.shape[1:]
    init = nn.initializers.normal(0.02)
    pos_td = jnp.asarray(sincos_2d(grid, self.width), self.dtype)
    x = nn.Dense(self.width, kernel_init=init, dtype=self.dtype,
                 name="embed")(z_nkd) + pos_td[ctx_ids_nk]
    mask_tok = self.param("mask_token", init, (1, 1, self.width))
    pred = (mask_tok[0] + pos_td[tgt_ids_njb]).astype(self.dtype)
    # One sequence per target block: the context, then that block's mask
    # tokens (the official predictor's concatenation).
    x = jnp.concatenate([jnp.repeat(x, j, axis=0),
                         pred.reshape(n * j, b, self.width)], axis=1)
    keys = jnp.concatenate([jnp.repeat(ctx_valid_nk, j, axis=0),
                            tgt_valid_njb.reshape(n * j, b)], axis=1)
    for i in range(self.depth):
      x = Block(self.num_heads, self.mlp_ratio, self.dtype, init,
                name=f"block{i + 1}")(x, mask=keys[:, None, None, :])
    x = nn.LayerNorm(epsilon=1e-6, dtype=self.dtype, name="norm")(x[:, k:])
    x = nn.Dense(self.out_width, kernel_init=init, dtype=self.dtype,
                 name="proj")(x)
    return x.reshape(n, j, b, -1)


def _first(mask_nt, cap):
  """(indices [n, cap] of mask's patches first, raster order; valid)."""
  ids = jnp.argsort(~mask_nt, axis=-1, stable=True)[..., :cap]
  return ids, jnp.arange(cap) < jnp.sum(mask_nt, axis=-1, keepdims=True)


def _to_grid(x_nkd, ids_nk, valid_nk, t):
  """Scatter gathered tokens back to [n, t, d]; zeros elsewhere."""
  x_nkd = jnp.where(valid_nk[..., None], x_nkd, 0)
  out = jnp.zeros(x_nkd.shape[:-2] + (t, x_nkd.shape[-1]), x_nkd.dtype)
  return out.at[jnp.arange(x_nkd.shape[0])[:, None], ids_nk].set(x_nkd)


def target_slots(cfg, grid):
  """A static bound on a target block's patches: the largest h times the
  largest w that block_size can return."""
  keep = int(grid * grid * cfg.target_scale[1])
  h = min(round((keep * cfg.aspect[1]) ** 0.5), grid - 1)
  w = min(round((keep / cfg.aspect[0]) ** 0.5), grid - 1)
  return min(h * w, grid * grid)


class IJEPA(nn.Module):
  encoder: nn.Module
  pred_width: int
  pred_depth: int

  def setup(self):
    e = self.encoder
    self.predictor = Predictor(self.pred_width, self.pred_depth, e.num_heads,
                               e.width, e.mlp_ratio, e.dtype)

  def grid(self, x):
    return x.shape[1] // self.encoder.patch_size

  def __call__(self, views, train=True, masks=None, cap=None,
               target_slots=None):
    """(predictions [n, J, T, D] float32, zeros off the target blocks;
    context tokens [n, T, D]). masks=None (init): the whole grid as
    context and as one target. cap=None: the encoder runs on the full
    grid, attention-masked to the context; cap=K (≥ every row's context
    size): on the first K tokens of the context-first order, its outputs
    scattered back to the grid (zeros off the context). The predictor
    reads the context tokens either way, and `target_slots` (≥ every target
    block's size; None: T) mask tokens per block."""
    x = views[0]
    g = self.grid(x)
    t = g * g
    if masks is None:
      full = jnp.ones((x.shape[0], t), bool)
      masks = (full, full[:, None])
    context, targets = masks
    if cap is None:
      z, _ = self.encoder(x, train=train, token_mask=context, tokens=True)
      ctx_ids = jnp.broadcast_to(jnp.arange(t), context.shape)
      ctx_valid, z_ctx = context, z
    else:
      ctx_ids, ctx_valid = _first(context, cap)
      z_ctx, _ = self.encoder(x, train=train, token_mask=ctx_valid,
                              tokens=True, token_ids=ctx_ids)
      z = _to_grid(z_ctx, ctx_ids, ctx_valid, t)
    tgt_ids, tgt_valid = _first(targets, min(target_slots or t, t))
    pred = self.predictor(z_ctx, ctx_ids, ctx_valid, tgt_ids, tgt_valid, g)
    n, j, b, d = pred.shape
    pred = _to_grid(pred.reshape(n * j, b, d), tgt_ids.reshape(n * j, b),
                    tgt_valid.reshape(n * j, b), t).reshape(n, j, t, d)
    return pred.astype(jnp.float32), z

  def targets(self, x):
    """The target encoder's output (apply with its parameters): final
    tokens, layer-normalized again without affine, float32."""
    h, _ = self.encoder(x, train=False, tokens=True)
    h = h.astype(jnp.float32)
    mean = h.mean(-1, keepdims=True)
    var = h.var(-1, keepdims=True)
    return (h - mean) / jnp.sqrt(var + 1e-5)

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg):
  vit = models.from_config(cfg.model)
  if not isinstance(vit, models.ViT):
    raise ValueError(f"I-JEPA needs a ViT encoder; model.name is "
                     f"{cfg.model.name!r}. Valid: "
                     f"{', '.join(n for n in models.ENCODERS if 'vit' in n)}.")
  c = cfg.ijepa
  if vit.pool != "gap":
    raise ValueError("I-JEPA's encoder has no class token: set "
                     "--config.model.pool=gap.")
  if c.loss not in LOSSES:
    raise ValueError(f"Unknown ijepa.loss {c.loss!r}; valid: "
                     f"{', '.join(LOSSES)}.")
  if c.pred_width % 4:
    raise ValueError(f"ijepa.pred_width = {c.pred_width}: the sin-cos "
                     "positions need a multiple of 4.")
  for name in ("target_scale", "context_scale", "aspect"):
    lo, hi = c[name]
    if not 0 < lo <= hi:
      raise ValueError(f"ijepa.{name} = {c[name]}: need 0 < low <= high.")
  if c.num_targets < 1:
    raise ValueError("ijepa.num_targets must be >= 1.")
  ema.check(cfg.ema)
  return IJEPA(vit, c.pred_width, c.pred_depth)


def context_caps(t):
  """The static context lengths the encoder is compiled for: T/4, T/2, T."""
  return tuple(sorted({max(1, t // 4), max(1, t // 2), t}))


def ijepa_loss(pred_njtd, target_ntd, targets_njt, loss="smooth_l1"):
  """Mean of smooth-L1 (or squared) errors over every element of every
  target block; float32."""
  diff_shape = pred_njtd.shape
  target = jnp.broadcast_to(target_ntd[:, None].astype(jnp.float32),
                            diff_shape)
  pred = pred_njtd.astype(jnp.float32)
  if loss == "smooth_l1":
    err = optax.huber_loss(pred, target, delta=1.0)
  else:
    err = jnp.square(pred - target)
  w = targets_njt[..., None].astype(jnp.float32)
  return jnp.sum(err * w) / (jnp.sum(w) * diff_shape[-1])


def make_objective(cfg, net, *, mesh=None, total_steps):
  del mesh
  c = cfg.ijepa

  def loss_fn(variables, state, views, key):
    x = views[0]
    g = net.grid(x)
    masks = sample_masks(key, x.shape[0], g, c)
    apply = functools.partial(net.apply, views=views, masks=masks,
                              target_slots=target_slots(c, g))
    if c.context_gather:
      caps = context_caps(masks[0].shape[1])
      m = jnp.max(jnp.sum(masks[0], axis=1))
      run = [jax.checkpoint(lambda v, k=k: apply(v, cap=k)) for k in caps]
      pred, z = jax.lax.switch(jnp.searchsorted(jnp.asarray(caps), m), run,
                               variables)
    else:
      pred, z = apply(variables)
    target = net.apply({"params": state["ema"]["params"]}, x,
                       method="targets")
    target = jax.lax.stop_gradient(target)
    loss = ijepa_loss(pred, target, masks[1], c.loss)
    w = masks[0][..., None].astype(jnp.float32)
    rep = jnp.sum(z.astype(jnp.float32) * w, 1) / jnp.sum(w, 1)
    metrics = {"loss": loss,
               "context_fraction": jnp.mean(masks[0]),
               "target_fraction": jnp.mean(masks[1])}
    return loss, base.LossAux(metrics, variables["batch_stats"], state, rep)

  def init_state(variables):
    return {"ema": {"params": {"encoder": variables["params"]["encoder"]}}}

  def update_state(state, variables, step):
    m = ema.momentum(cfg.ema, step, total_steps)
    target = jax.tree.map(lambda e, p: m * e + (1 - m) * p,
                          state["ema"]["params"]["encoder"],
                          variables["params"]["encoder"])
    return {"ema": {"params": {"encoder": target}}}, {"ema_momentum": m}

  return base.Objective(loss_fn, init_state=init_state,
                        update_state=update_state)
