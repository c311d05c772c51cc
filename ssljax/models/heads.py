"""MLP heads: projectors and predictors, from a spec string like "8192-8192-8192".

Hidden layers are Linear + BatchNorm + ReLU; the last layer is Linear only
(optionally followed by a BatchNorm without affine parameters, as in SimSiam /
MoCo v3, with a learned scale only, `last_bn_scale`, SimCLR's, or with both,
`last_bn_affine`, solo-learn's NNCLR). `torch_init`:
every Linear initialized as PyTorch's nn.Linear (kernel and bias
U(±1/√fan_in)); `init_std`: kernels N(0, init_std²) (SimCLR's 0.01);
default Flax's (LeCun normal, zero bias).
Conventions of the reference implementations:
  VICReg:  hidden bias True,  last bias False.
  BYOL:    hidden bias True,  last bias False  (predictor likewise;
           ssljax's default keeps a last bias: byol.py's `last_bias`).
  MVEB:    hidden bias False, last bias True.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from ssljax.models.norm import batch_norm
from ssljax.models.resnet import HAIKU_INIT


def parse_spec(spec):
  try:
    dims = tuple(int(s) for s in str(spec).split("-"))
  except ValueError:
    dims = ()
  if not dims or min(dims) <= 0:
    raise ValueError(f"Bad MLP spec {spec!r}: expected positive layer widths "
                     "joined by '-', e.g. '8192-8192-8192'.")
  return dims


class MLP(nn.Module):
  """Returns [n, last width] in float32 (losses are computed in float32)."""
  spec: str
  hidden_bias: bool = True
  last_bias: bool = True
  last_bn: bool = False
  dtype: Any = jnp.float32
  unbiased_running_var: bool = False  # BatchNorm as PyTorch: models.norm
  torch_init: bool = False
  # SimCLR's official head: kernels N(0, init_std²) (0: the default init),
  # and the last BN with a learned scale (its `center=False, scale=True`).
  init_std: float = 0.0
  last_bn_scale: bool = False
  # The last BN with a learned scale and offset (solo-learn's NNCLR).
  last_bn_affine: bool = False
  haiku_init: bool = False  # hk.Linear's default (BYOL): resnet.HAIKU_INIT
  bn_groups: int = 1  # BN statistics per block of rows: models.norm

  @nn.compact
  def __call__(self, x, train=False):
    dims = parse_spec(self.spec)
    x = x.astype(self.dtype)
    for i, d in enumerate(dims[:-1]):
      x = nn.Dense(d, use_bias=self.hidden_bias, dtype=self.dtype,
                   name=f"fc{i + 1}", **self._init(x.shape[-1]))(x)
      x = batch_norm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5, dtype=self.dtype, name=f"bn{i + 1}",
                     unbiased_running_var=self.unbiased_running_var,
                     groups=self.bn_groups)(x)
      x = nn.relu(x)
    x = nn.Dense(dims[-1], use_bias=self.last_bias, dtype=self.dtype,
                 name=f"fc{len(dims)}", **self._init(x.shape[-1]))(x)
    if self.last_bn:
      x = batch_norm(use_running_average=not train, momentum=0.9,
                     epsilon=1e-5,
                     use_scale=self.last_bn_scale or self.last_bn_affine,
                     use_bias=self.last_bn_affine,
                     dtype=self.dtype, name=f"bn{len(dims)}",
                     unbiased_running_var=self.unbiased_running_var,
                     groups=self.bn_groups)(x)
    return x.astype(jnp.promote_types(x.dtype, jnp.float32))

  def _init(self, fan_in):
    """nn.Linear's reset_parameters: kaiming_uniform_(a=√5) on the weight
    is U(±1/√fan_in), and the bias U(±1/√fan_in)."""
    if self.init_std:
      return dict(kernel_init=nn.initializers.normal(self.init_std))
    if self.haiku_init:
      return dict(kernel_init=HAIKU_INIT)
    if not self.torch_init:
      return {}
    bound = 1.0 / fan_in**0.5
    return dict(
        kernel_init=nn.initializers.variance_scaling(1 / 3, "fan_in",
                                                     "uniform"),
        bias_init=lambda key, shape, dtype=jnp.float32: jax.random.uniform(
            key, shape, dtype, -bound, bound))

