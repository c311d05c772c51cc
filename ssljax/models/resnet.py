"""ResNet v1.5 trunks (He et al. 2016; stride on the 3×3 conv of bottlenecks).

Matches torchvision's resnet18/34/50 without the classifier (ResNet-50 trunk:
23,508,032 parameters). Options: `stem="cifar"` (3×3 stride-1 conv, no max-pool,
for 32 px inputs), `zero_init_residual` (last BN scale of every residual block
starts at 0, as in MVEB / Goyal et al.), `width` (channels of the first
stage), `unbiased_running_var` (BatchNorm's running variance as PyTorch
updates it: ssljax.models.norm), `torch_init`
(convolutions initialized as torchvision's ResNet does, kaiming_normal_
with mode="fan_out" and the ReLU gain: N(0, 2 / fan_out); default Flax's
LeCun normal, truncated, variance 1 / fan_in: TensorFlow's
VarianceScaling(), SimCLR's), `stem_pool_padding` ("torch": the max-pool
pads 1 on each side, as torchvision; "same": TensorFlow's SAME, which on
an even-sized map pads only after (0, 1): another window, as SimCLR's and
BYOL's official ResNets), `conv_padding` (the same choice for every
convolution: "same" is Haiku's, BYOL's; SimCLR's TF ResNet pads strided
convolutions symmetrically, "torch"), `haiku_init` (convolutions
initialized as Haiku's default, a truncated normal of σ = 1/√fan_in
without the variance correction: BYOL's), `bn_groups` (BatchNorm
statistics per group of examples, ssljax.models.norm: SwAV's SyncBN
process groups).
BatchNorm: momentum 0.9 (torch 0.1), eps 1e-5; under jit with a batch sharded
over devices its statistics are over the global batch (sync BN), or over
each of `bn_groups` contiguous blocks of it.
"""

from typing import Any, Sequence

import flax.linen as nn
import jax.numpy as jnp

from ssljax.models.norm import batch_norm

# torchvision's ResNet: kaiming_normal_(mode="fan_out", nonlinearity="relu").
TORCH_CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# Haiku's default for hk.Conv2D and hk.Linear: TruncatedNormal(1/√fan_in)
# at ±2σ without the variance correction (std ≈ 0.88/√fan_in); Flax's
# variance_scaling divides its σ by that 0.8796..., so its square undoes it.
HAIKU_INIT = nn.initializers.variance_scaling(0.87962566103423978**2,
                                              "fan_in", "truncated_normal")
PADDINGS = ("torch", "same")


def _conv_init(torch_init, haiku_init=False):
  if haiku_init:
    return HAIKU_INIT
  return TORCH_CONV_INIT if torch_init else nn.initializers.lecun_normal()


def _padding(kind, k):
  """"torch": k // 2 on each side; "same": TensorFlow's / Haiku's SAME,
  which for a stride-2 conv on an even map pads (k − 2) // 2 before and
  one more after (stride 1: the same as "torch")."""
  return "SAME" if kind == "same" else [(k // 2, k // 2)] * 2


class Block(nn.Module):
  """Basic (two 3×3) or bottleneck (1×1, 3×3, 1×1 ×4) residual block."""
  features: int
  strides: int
  bottleneck: bool
  zero_init_residual: bool
  dtype: Any
  unbiased_running_var: bool = False
  torch_init: bool = False
  conv_padding: str = "torch"
  haiku_init: bool = False
  bn_groups: int = 1

  @nn.compact
  def __call__(self, x, train):
    conv = lambda f, k, s, name: nn.Conv(
        f, (k, k), (s, s), padding=_padding(self.conv_padding, k),
        use_bias=False, dtype=self.dtype,
        kernel_init=_conv_init(self.torch_init, self.haiku_init), name=name)
    norm = lambda name, zero=False: batch_norm(
        use_running_average=not train, momentum=0.9, epsilon=1e-5,
        dtype=self.dtype, name=name,
        scale_init=nn.initializers.zeros if zero else nn.initializers.ones,
        unbiased_running_var=self.unbiased_running_var,
        groups=self.bn_groups)
    out_features = self.features * (4 if self.bottleneck else 1)
    if self.bottleneck:
      y = nn.relu(norm("bn1")(conv(self.features, 1, 1, "conv1")(x)))
      y = nn.relu(norm("bn2")(conv(self.features, 3, self.strides, "conv2")(y)))
      y = norm("bn3", self.zero_init_residual)(
          conv(out_features, 1, 1, "conv3")(y))
    else:
      y = nn.relu(norm("bn1")(conv(self.features, 3, self.strides, "conv1")(x)))
      y = norm("bn2", self.zero_init_residual)(
          conv(out_features, 3, 1, "conv2")(y))
    if x.shape[-1] != out_features or self.strides != 1:
      x = norm("down_bn")(conv(out_features, 1, self.strides, "down_conv")(x))
    return nn.relu(x + y)


class ResNet(nn.Module):
  """Returns (representation [n, C] after global average pooling,
  {"stem", "stage1".."stage4": feature maps [n, h, w, c]})."""
  stage_sizes: Sequence[int]
  bottleneck: bool
  width: int = 64
  stem: str = "imagenet"
  zero_init_residual: bool = False
  dtype: Any = jnp.float32
  unbiased_running_var: bool = False
  torch_init: bool = False
  stem_pool_padding: str = "torch"
  conv_padding: str = "torch"
  haiku_init: bool = False
  bn_groups: int = 1

  @nn.compact
  def __call__(self, x, train=False):
    if self.stem not in ("imagenet", "cifar"):
      raise ValueError(f"Unknown stem {self.stem!r}; valid: imagenet, cifar.")
    if self.stem_pool_padding not in ("torch", "same"):
      raise ValueError(f"Unknown stem_pool_padding "
                       f"{self.stem_pool_padding!r}; valid: torch, same.")
    if self.bn_groups < 1:
      raise ValueError(f"bn_groups = {self.bn_groups}: must be >= 1 (1: "
                       "BatchNorm statistics over the whole batch).")
    if self.conv_padding not in PADDINGS:
      raise ValueError(f"Unknown conv_padding {self.conv_padding!r}; valid: "
                       "torch, same.")
    init = _conv_init(self.torch_init, self.haiku_init)
    x = x.astype(self.dtype)
    if self.stem == "imagenet":
      x = nn.Conv(self.width, (7, 7), (2, 2),
                  padding=_padding(self.conv_padding, 7), use_bias=False,
                  dtype=self.dtype, name="stem_conv", kernel_init=init)(x)
    else:
      x = nn.Conv(self.width, (3, 3), (1, 1), padding=[(1, 1)] * 2,
                  use_bias=False, dtype=self.dtype, name="stem_conv",
                  kernel_init=init)(x)
    x = batch_norm(use_running_average=not train, momentum=0.9, epsilon=1e-5,
                   dtype=self.dtype, name="stem_bn",
                   unbiased_running_var=self.unbiased_running_var,
                   groups=self.bn_groups)(x)
    x = nn.relu(x)
    if self.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), (2, 2), padding=(
          "SAME" if self.stem_pool_padding == "same" else [(1, 1)] * 2))
    inter = {"stem": x}
    for i, num_blocks in enumerate(self.stage_sizes):
      for j in range(num_blocks):
        x = Block(self.width * 2**i, 2 if (i > 0 and j == 0) else 1,
                  self.bottleneck, self.zero_init_residual, self.dtype,
                  self.unbiased_running_var, self.torch_init,
                  self.conv_padding, self.haiku_init, self.bn_groups,
                  name=f"stage{i + 1}_block{j + 1}")(x, train)
      inter[f"stage{i + 1}"] = x
    return jnp.mean(x, axis=(1, 2)), inter
