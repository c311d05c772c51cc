"""Auto-encoders: clean, denoising and masking (the three regimes of
"Learning by reconstruction produces uninformative features for
perception", Balestriero & LeCun, ICML 2024).

Network: any trunk of `ssljax.models` (e.g. ResNet-18 with the CIFAR stem
at 32 px) encodes the corrupted view x̃ to its pooled representation h (the
code the probes evaluate: the decoder sees nothing else, so h must carry
the image); a small decoder maps h back to pixels:
  Dense(h -> s·s·W) + BN + ReLU, reshaped to [s, s, W]; k = log2(S/s)
  stride-2 transposed 4×4 convs (+ BN + ReLU), channels W/2, W/4, ... (≥ 8);
  a 3×3 conv to 3 channels, linear output (normalized pixel space).
  W = decoder.width, s = decoder.start_size, S = data.image_size.
Input and target: the first augmented view x (normalized pixels); the
config's augmentation applies (crop + flip only with augment="none").

Corruption (corruption.kind):
  "none":     x̃ = x
  "gaussian": x̃ = x + σ·ε, ε ~ N(0, I), σ = corruption.noise_std (in
              normalized pixel units, i.e. per-channel std of the data)
  "mask":     the image is cut into P×P patches (P = corruption.patch_size,
              all channels of a pixel together); exactly round(p·#patches)
              of them, p = corruption.mask_ratio, chosen uniformly per image
              (argsort of uniform noise, as MAE) are set to 0 (the data
              mean). The closed-form analysis of the paper drops patches
              independently with probability p; a fixed count avoids images
              with nothing masked and agrees with it as #patches grows.
Loss (float32): pixel MSE, the mean of (x̂ − x)² over every pixel and
channel of the global batch (corruption.loss_on="all"), or over the masked
pixels only ("masked", kind "mask" only). The paper is silent on this for
its conv AEs; MAE uses masked only. Metrics: loss, recon_mse (all pixels,
whatever loss_on says), and masked_mse under masking.
The online probe reads the encoder's features of the corrupted view (the
forward pass training does anyway); the offline evaluations use clean
images.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ssljax import models
from ssljax.methods import base

CORRUPTIONS = ("none", "gaussian", "mask")
LOSS_ON = ("all", "masked")


def default_config():
  return ml_collections.ConfigDict(dict(
      decoder=dict(width=64, start_size=4),
      corruption=dict(kind="none", noise_std=0.5, mask_ratio=0.5,
                      patch_size=4, loss_on="all")))


class Decoder(nn.Module):
  """[n, w] -> [n, S, S, 3] float32."""
  image_size: int
  width: int = 64
  start_size: int = 4
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h, train=True):
    s, w = self.start_size, self.width
    bn = lambda name: nn.BatchNorm(use_running_average=not train,
                                   momentum=0.9, epsilon=1e-5,
                                   dtype=self.dtype, name=name)
    y = nn.Dense(s * s * w, dtype=self.dtype, name="fc")(h.astype(self.dtype))
    y = nn.relu(bn("fc_bn")(y)).reshape(-1, s, s, w)
    for i in range(num_upsamples(self.image_size, s)):
      y = nn.ConvTranspose(max(w >> (i + 1), 8), (4, 4), (2, 2),
                           padding="SAME", use_bias=False, dtype=self.dtype,
                           name=f"up{i + 1}")(y)
      y = nn.relu(bn(f"up{i + 1}_bn")(y))
    y = nn.Conv(3, (3, 3), padding="SAME", dtype=self.dtype, name="out")(y)
    return y.astype(jnp.float32)


def num_upsamples(image_size, start_size):
  k = (image_size // max(start_size, 1)).bit_length() - 1
  if start_size < 1 or start_size << k != image_size:
    raise ValueError(f"decoder.start_size = {start_size} does not reach "
                     f"data.image_size = {image_size} by doubling; use a "
                     f"start size s with image_size = s·2^k (e.g. 4 for "
                     "16 or 32 px).")
  return k


class AutoEncoder(nn.Module):
  """Returns (encoder representation, reconstruction) of views[0]."""
  encoder: nn.Module
  decoder: Decoder

  def __call__(self, views, train=True):
    rep, _ = self.encoder(views[0], train=train)
    return rep, self.decoder(rep, train=train)

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


def build(cfg):
  encoder = models.from_config(cfg.model)
  d = cfg.decoder
  num_upsamples(cfg.data.image_size, d.start_size)
  return AutoEncoder(encoder, Decoder(cfg.data.image_size, d.width,
                                      d.start_size, encoder.dtype))


def check_corruption(c, image_size):
  if c.kind not in CORRUPTIONS:
    raise ValueError(f"Unknown corruption.kind {c.kind!r}; valid: "
                     f"{', '.join(CORRUPTIONS)}.")
  if c.loss_on not in LOSS_ON:
    raise ValueError(f"Unknown corruption.loss_on {c.loss_on!r}; valid: "
                     f"{', '.join(LOSS_ON)}.")
  if c.loss_on == "masked" and c.kind != "mask":
    raise ValueError(f"corruption.loss_on='masked' needs kind='mask' (kind "
                     f"is {c.kind!r}); use loss_on='all'.")
  if c.kind == "gaussian" and c.noise_std < 0:
    raise ValueError(f"corruption.noise_std = {c.noise_std}: must be ≥ 0.")
  if c.kind == "mask":
    if c.patch_size < 1 or image_size % c.patch_size:
      raise ValueError(f"corruption.patch_size = {c.patch_size} does not "
                       f"divide data.image_size = {image_size}.")
    if not 0 < c.mask_ratio < 1:
      raise ValueError(f"corruption.mask_ratio = {c.mask_ratio}: must be in "
                       "(0, 1).")


def patch_mask(key, n, image_size, patch_size, ratio):
  """float32 [n, S, S, 1]: 1 on masked pixels; round(ratio·G²) of the G×G
  patches of each image masked, chosen by argsort of uniform noise."""
  g = image_size // patch_size
  num_masked = int(round(ratio * g * g))
  rank_nm = jnp.argsort(jnp.argsort(jax.random.uniform(key, (n, g * g)),
                                    axis=1), axis=1)
  m = (rank_nm < num_masked).astype(jnp.float32).reshape(n, g, g)
  m = jnp.repeat(jnp.repeat(m, patch_size, axis=1), patch_size, axis=2)
  return m[..., None]


def corrupt(key, x, c):
  """(x̃, mask or None) for x [n, S, S, 3] per corruption config `c`."""
  if c.kind == "gaussian":
    return x + c.noise_std * jax.random.normal(key, x.shape, x.dtype), None
  if c.kind == "mask":
    mask = patch_mask(key, x.shape[0], x.shape[1], c.patch_size,
                      c.mask_ratio)
    return x * (1 - mask).astype(x.dtype), mask
  return x, None


def reconstruction_loss(x_hat, x, mask=None, loss_on="all"):
  """Pixel MSE in float32 over the batch: every pixel, or masked only."""
  err = jnp.square(x_hat.astype(jnp.float32) - x.astype(jnp.float32))
  metrics = {"recon_mse": jnp.mean(err)}
  if mask is not None:
    metrics["masked_mse"] = (jnp.sum(err * mask)
                             / (jnp.sum(mask) * x.shape[-1]))
  loss = metrics["masked_mse"] if loss_on == "masked" else metrics["recon_mse"]
  metrics["loss"] = loss
  return loss, metrics


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  c = cfg.corruption
  check_corruption(c, cfg.data.image_size)

  def loss_fn(variables, state, views, key):
    x = views[0]
    x_tilde, mask = corrupt(key, x, c)
    (rep, x_hat), new = net.apply(variables, [x_tilde], train=True,
                                  mutable=["batch_stats"])
    loss, metrics = reconstruction_loss(x_hat, x, mask, c.loss_on)
    return loss, base.LossAux(metrics, new["batch_stats"], state, rep)

  return base.Objective(loss_fn)
