"""BatchNorm as Flax computes it, with PyTorch's running variance as an option.

`batch_norm(...)`: flax.linen.BatchNorm itself by default, this module's
BatchNorm with `unbiased_running_var` (ResNet and MLP heads build theirs
through it).

`flax.linen.BatchNorm`'s arithmetic, op for op (statistics in float32 or
wider, the variance as E[x²] − E[x]² clipped at 0, the same parameter and
statistic names), so that the default is bit-identical to it; parameters
and statistics are float32 (float64 for a float64 model). One option:
`unbiased_running_var` updates the running variance with the unbiased batch
variance (× n / (n − 1), n the values reduced per feature), as
`torch.nn.BatchNorm` and SyncBatchNorm do; Flax and Haiku (BYOL's official
code) update it with the biased one. Normalization always uses the biased
batch variance, in both libraries. Under jit with the batch sharded over
devices the statistics are over the global batch (SyncBatchNorm).
"""

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp


def batch_norm(unbiased_running_var=False, **kwargs):
  """flax.linen.BatchNorm itself by default (so that the programs XLA
  compiles, and their rounding, stay exactly what they were: training with
  AdamW turns a bias-before-BN's rounding-noise gradient into full-size
  steps, so a different fusion of the same arithmetic changed the
  quickstart's trajectory), BatchNorm below with `unbiased_running_var`."""
  if unbiased_running_var:
    return BatchNorm(unbiased_running_var=True, **kwargs)
  return nn.BatchNorm(**kwargs)


class BatchNorm(nn.Module):
  """Normalizes over every axis but the last."""
  use_running_average: bool = False
  momentum: float = 0.9
  epsilon: float = 1e-5
  use_scale: bool = True
  use_bias: bool = True
  scale_init: Callable = nn.initializers.ones
  unbiased_running_var: bool = False
  dtype: Any = None

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    axes = tuple(range(x.ndim - 1))
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
      mean = xw.mean(axes)
      var = jnp.maximum(0.0, jax.lax.square(xw).mean(axes)
                        - jax.lax.square(mean))
      if not self.is_initializing():
        new_var = var
        if self.unbiased_running_var:
          n = 1
          for a in axes:
            n *= x.shape[a]
          new_var = var * (n / max(n - 1, 1))
        ra_mean.value = (self.momentum * ra_mean.value
                         + (1 - self.momentum) * mean)
        ra_var.value = (self.momentum * ra_var.value
                        + (1 - self.momentum) * new_var)
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
    return jnp.asarray(y, dtype)
