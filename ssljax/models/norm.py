"""BatchNorm with PyTorch's running variance, for the PyTorch recipes.

`batch_norm(...)` is what ResNet and the MLP heads build: flax.linen.
BatchNorm itself by default, `TorchBatchNorm` with `unbiased_running_var`.
TorchBatchNorm is Flax's arithmetic op for op (statistics in float32 or
wider, the variance as E[x²] − E[x]² clipped at 0, the same parameter and
statistic names, so checkpoints load either way) with one change: the
running variance is updated with the unbiased batch variance (× n / (n − 1),
n the values reduced per feature), as torch.nn.BatchNorm and SyncBatchNorm
do; Flax and Haiku (BYOL's official code) update it with the biased one.
Normalization uses the biased batch variance in both libraries. Its
parameters and statistics are float32 (float64 for a float64 model). Under
jit with the batch sharded over devices the statistics are over the global
batch (SyncBatchNorm).

`groups` = G > 1: the statistics of each of G equal, contiguous blocks of
rows are its own (PyTorch's SyncBatchNorm with a process group: SwAV's
800-epoch script syncs groups of 8 GPUs, 512 of its 4096 images). Callers
order rows so that each block is one group (ssljax.methods.joint.
group_major). Each official group keeps its own running statistics and
rank 0 saves its group's, so the running statistics are updated from
block 0's alone: the official checkpoint's, and what evaluation uses.
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def batch_norm(unbiased_running_var=False, groups=1, **kwargs):
  """flax.linen.BatchNorm itself by default, so that the programs XLA
  compiles, and their rounding, stay exactly Flax's (AdamW turns a
  bias-before-BN's rounding-noise gradient into full-size steps: another
  fusion of the same arithmetic changed the quickstart's trajectory);
  TorchBatchNorm with `unbiased_running_var` or `groups` > 1."""
  if unbiased_running_var or groups > 1:
    return TorchBatchNorm(unbiased=unbiased_running_var, groups=groups,
                          **kwargs)
  return nn.BatchNorm(**kwargs)


class TorchBatchNorm(nn.Module):
  """Normalizes over every axis but the last; see the module docstring."""
  use_running_average: bool = False
  momentum: float = 0.9
  epsilon: float = 1e-5
  use_scale: bool = True
  use_bias: bool = True
  scale_init: Callable = nn.initializers.ones
  dtype: Any = None
  unbiased: bool = True  # False: Flax's biased running variance
  groups: int = 1

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    train = not self.use_running_average
    if train and self.groups > 1:
      if x.shape[0] % self.groups:
        raise ValueError(
            f"BatchNorm in {self.groups} groups (model.bn_groups) got "
            f"{x.shape[0]} rows, not a multiple of {self.groups}: make the "
            "batch size a multiple of model.bn_groups.")
      x_in = x
      x = x.reshape(self.groups, -1, *x.shape[1:])  # [G, rows / G, ...]
    axes = tuple(range(x.ndim - 1))
    if train and self.groups > 1:
      axes = axes[1:]
    # float32 (Flax's choice) unless the model is float64.
    store = jnp.promote_types(self.dtype or jnp.float32, jnp.float32)
    ra_mean = self.variable("batch_stats", "mean",
                            lambda: jnp.zeros((features,), store))
    ra_var = self.variable("batch_stats", "var",
                           lambda: jnp.ones((features,), store))
    if self.use_running_average:
      mean, var = ra_mean.value, ra_var.value
    else:
      work = jnp.promote_types(self.dtype or x.dtype, jnp.float32)
      xw = x.astype(work)
      mean = xw.mean(axes, keepdims=True)
      var = jnp.maximum(0.0, jax.lax.square(xw).mean(axes, keepdims=True)
                        - jax.lax.square(mean))
      if not self.is_initializing():
        n = x.size // (features * self.groups)  # values per feature, group
        bessel = n / max(n - 1, 1) if self.unbiased else 1.0
        first = lambda a: a.reshape(-1, features)[0]  # block 0's
        ra_mean.value = (self.momentum * ra_mean.value
                         + (1 - self.momentum) * first(mean))
        ra_var.value = (self.momentum * ra_var.value
                        + (1 - self.momentum) * first(var) * bessel)
    y = x - mean
    mul = jax.lax.rsqrt(var + self.epsilon)
    args = [x]
    if self.use_scale:
      scale = self.param("scale", self.scale_init, (features,), store)
      mul = mul * scale
      args.append(scale)
    y = y * mul
    if self.use_bias:
      bias = self.param("bias", nn.initializers.zeros, (features,), store)
      y = y + bias
      args.append(bias)
    dtype = self.dtype or jnp.result_type(*args)
    if train and self.groups > 1:
      y = y.reshape(x_in.shape)
    return jnp.asarray(y, dtype)
