"""Mixup and CutMix on a batch, as timm's `Mixup(mode="batch")` for MAE /
DeiT fine-tuning (no maintained TF-free JAX library provides them).

One draw per (global) batch: with probability `prob` the batch is mixed,
by CutMix with probability `switch_prob` when both are on (else the one
that is on), with λ ~ Beta(α, α) of the chosen one. Each example is mixed
with the batch read backwards (example i with n − 1 − i, timm's
`x.flip(0)`; over the global batch here, over each device's batch in
timm). Mixup: x ← λ·x + (1 − λ)·x_flip. CutMix: a box of side ratio
√(1 − λ) centred uniformly in the image and clipped to it takes x_flip's
pixels, and λ becomes the area fraction that kept x (timm's
`correct_lam`). Targets: λ·smooth(y) + (1 − λ)·smooth(y_flip), smooth the
label smoothing of optax.smooth_labels (timm's on/off values).
"""

import jax
import jax.numpy as jnp
import optax


def cutmix_box(key, h, w, lam):
  """[H, W] bool: the pixels that come from the flipped batch."""
  k_y, k_x = jax.random.split(key)
  ratio = jnp.sqrt(1.0 - lam)
  ch = (h * ratio).astype(jnp.int32)
  cw = (w * ratio).astype(jnp.int32)
  cy = jax.random.randint(k_y, (), 0, h)
  cx = jax.random.randint(k_x, (), 0, w)
  rows = jnp.arange(h)[:, None]
  cols = jnp.arange(w)[None]
  return ((rows >= jnp.clip(cy - ch // 2, 0, h))
          & (rows < jnp.clip(cy + ch // 2, 0, h))
          & (cols >= jnp.clip(cx - cw // 2, 0, w))
          & (cols < jnp.clip(cx + cw // 2, 0, w)))


def mix(key, x, labels, num_classes, mixup_alpha=0.8, cutmix_alpha=1.0,
        switch_prob=0.5, prob=1.0, label_smoothing=0.0):
  """x [n, H, W, C], int labels [n] -> (mixed x, soft targets [n, K], λ).

  With both alphas 0 (or prob 0) x is returned unchanged with the smoothed
  one-hot targets and λ = 1."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes),
                                label_smoothing)
  if (mixup_alpha <= 0 and cutmix_alpha <= 0) or prob <= 0:
    return x, targets, jnp.float32(1.0)
  k_on, k_switch, k_mix, k_cut, k_box = jax.random.split(key, 5)
  if mixup_alpha > 0 and cutmix_alpha > 0:
    use_cut = jax.random.uniform(k_switch) < switch_prob
  else:
    use_cut = jnp.bool_(cutmix_alpha > 0)
  lam_mix = jax.random.beta(k_mix, max(mixup_alpha, 1e-3),
                            max(mixup_alpha, 1e-3))
  lam_cut = jax.random.beta(k_cut, max(cutmix_alpha, 1e-3),
                            max(cutmix_alpha, 1e-3))
  lam = jnp.where(use_cut, lam_cut, lam_mix).astype(jnp.float32)
  on = jax.random.uniform(k_on) < prob
  lam = jnp.where(on, lam, 1.0)
  h, w = x.shape[1:3]
  box = cutmix_box(k_box, h, w, lam) & use_cut
  lam = jnp.where(use_cut, 1.0 - box.mean(), lam)
  flipped = x[::-1]
  mixed = jnp.where(use_cut, jnp.where(box[None, ..., None], flipped, x),
                    lam * x + (1.0 - lam) * flipped).astype(x.dtype)
  targets = lam * targets + (1.0 - lam) * targets[::-1]
  return mixed, targets, lam
