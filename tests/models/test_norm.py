import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from ssljax.models import norm
from ssljax.models.norm import TorchBatchNorm


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("shape", [(16, 8), (4, 5, 5, 8)])
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_torch_batchnorm_is_flax_but_for_the_running_var(dtype, shape, train,
                                                         affine):
  x = (jax.random.normal(jax.random.PRNGKey(0), shape) * 3 + 1).astype(dtype)
  kw = dict(use_running_average=not train, momentum=0.9, epsilon=1e-5,
            dtype=dtype, use_scale=affine, use_bias=affine)
  ref, ours = nn.BatchNorm(**kw), TorchBatchNorm(**kw)
  v = ref.init(jax.random.PRNGKey(1), x)
  assert jax.tree.structure(v) == jax.tree.structure(
      ours.init(jax.random.PRNGKey(1), x))
  v = jax.tree.map(lambda t: t + 0.3, v)
  run = lambda m: jax.jit(lambda v, x: m.apply(v, x, mutable=["batch_stats"]))
  (y1, s1), (y2, s2) = run(ref)(v, x), run(ours)(v, x)
  assert y1.dtype == y2.dtype
  np.testing.assert_array_equal(np.asarray(y1, np.float32),
                                np.asarray(y2, np.float32))
  m1, m2 = s1["batch_stats"], s2["batch_stats"]
  np.testing.assert_array_equal(m1["mean"], m2["mean"])
  if not train:  # the running statistics are read, not updated
    np.testing.assert_array_equal(m1["var"], m2["var"])
    return
  # var = 0.9 v + 0.1 biased: ours adds 0.1 biased / (n − 1).
  n = x.size // shape[-1]
  np.testing.assert_allclose(
      m2["var"] - m1["var"], (m1["var"] - 0.9 * v["batch_stats"]["var"]) / (
          n - 1), rtol=1e-3)


@pytest.mark.parametrize("shape", [(16, 8), (4, 5, 5, 8)])
def test_unbiased_running_var_is_torchs(shape):
  x = np.random.default_rng(0).normal(2.0, 3.0, shape)
  ours = TorchBatchNorm(dtype=jnp.float64)
  with jax.enable_x64(True):
    v = ours.init(jax.random.PRNGKey(0), x)
    y, new = ours.apply(v, jnp.asarray(x), mutable=["batch_stats"])
    y, new = np.asarray(y), jax.device_get(new)
  bn = (torch.nn.BatchNorm1d if len(shape) == 2 else torch.nn.BatchNorm2d)(
      shape[-1]).double().train()
  xt = torch.from_numpy(x if len(shape) == 2 else x.transpose(0, 3, 1, 2))
  want = bn(xt).detach().numpy()
  if len(shape) == 4:
    want = want.transpose(0, 2, 3, 1)
  np.testing.assert_allclose(y, want, rtol=1e-10, atol=1e-10)
  np.testing.assert_allclose(new["batch_stats"]["var"],
                             bn.running_var.numpy(), rtol=1e-12)
  np.testing.assert_allclose(new["batch_stats"]["mean"],
                             bn.running_mean.numpy(), rtol=1e-12)
  biased = nn.BatchNorm(use_running_average=False, dtype=jnp.float64)
  with jax.enable_x64(True):
    _, old = biased.apply(v, jnp.asarray(x), mutable=["batch_stats"])
  assert not np.allclose(old["batch_stats"]["var"], bn.running_var.numpy(),
                         rtol=1e-6)


def test_the_default_is_flax_batchnorm_itself():
  # The compiled programs (and so training's rounding) stay Flax's own.
  assert type(norm.batch_norm(momentum=0.9)) is nn.BatchNorm
  assert type(norm.batch_norm(unbiased_running_var=True)) is TorchBatchNorm


@pytest.mark.parametrize("shape", [(12, 5), (6, 3, 3, 5)])
def test_groups_normalize_each_block_as_its_own_batch(shape):
  """G groups: each contiguous block of rows normalized by its own
  statistics, as a separate BatchNorm would; running statistics from
  block 0 only (the official SyncBN group rank 0 saves)."""
  x = np.random.default_rng(0).normal(1.0, 2.0, shape)
  with jax.enable_x64(True):
    grouped = TorchBatchNorm(dtype=jnp.float64, groups=3)
    v = grouped.init(jax.random.PRNGKey(0), x[:3])
    v = jax.tree.map(lambda t: t + 0.25, v)
    y, new = grouped.apply(v, jnp.asarray(x), mutable=["batch_stats"])
    one = TorchBatchNorm(dtype=jnp.float64)
    blocks = [one.apply(v, jnp.asarray(b), mutable=["batch_stats"])
              for b in np.split(x, 3)]
    y, new = np.asarray(y), jax.device_get(new)
  np.testing.assert_allclose(y, np.concatenate([np.asarray(b[0])
                                                for b in blocks]),
                             rtol=1e-12, atol=1e-12)
  want = jax.device_get(blocks[0][1])["batch_stats"]
  for k in ("mean", "var"):
    np.testing.assert_allclose(new["batch_stats"][k], want[k], rtol=1e-12)
  # Evaluation reads the running statistics, whatever the row count.
  with jax.enable_x64(True):
    TorchBatchNorm(dtype=jnp.float64, groups=3, use_running_average=True
                   ).apply(v, jnp.asarray(x[:4]))
    with pytest.raises(ValueError, match="not a multiple of 3"):
      grouped.apply(v, jnp.asarray(x[:4]), mutable=["batch_stats"])


def test_one_group_is_the_ungrouped_batchnorm():
  assert isinstance(norm.batch_norm(groups=1), nn.BatchNorm)
  assert isinstance(norm.batch_norm(groups=2), TorchBatchNorm)
  assert not norm.batch_norm(groups=2).unbiased  # Flax's running variance
