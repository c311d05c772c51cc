"""Barlow Twins: the loss against the official code, the method end to end."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses
from tests import helpers


def official_numpy(z1, z2, lambd=0.0051, eps=1e-5):
  """facebookresearch/barlowtwins BarlowTwins.forward after the projector,
  transcribed to NumPy (float64): BatchNorm1d(affine=False) in training
  mode (biased variance), c = bn(z1)ᵀ bn(z2) / batch, on- and off-diagonal
  sums."""
  bn = lambda z: (z - z.mean(0)) / np.sqrt(z.var(0) + eps)
  c = bn(z1).T @ bn(z2) / z1.shape[0]
  on_diag = ((np.diagonal(c) - 1) ** 2).sum()
  off_diag = (c[~np.eye(len(c), dtype=bool)] ** 2).sum()
  return on_diag + lambd * off_diag, on_diag, off_diag


def _views(n=32, d=16, seed=0):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + 1.0
  z2 = 0.7 * z1 + 0.5 * rng.normal(size=(n, d))
  return z1, z2


@pytest.mark.parametrize("n,d", [(32, 16), (8, 64)])
def test_loss_matches_the_official_formula(n, d):
  z1, z2 = _views(n, d)
  loss, m = losses.barlow_twins(jnp.asarray(z1, jnp.float32),
                                jnp.asarray(z2, jnp.float32), lambd=0.02)
  ref, on, off = official_numpy(z1, z2, lambd=0.02)
  np.testing.assert_allclose(loss, ref, rtol=2e-5)
  np.testing.assert_allclose(m["on_diag"], on, rtol=2e-5)
  np.testing.assert_allclose(m["off_diag"], off, rtol=2e-5)
  assert loss.dtype == jnp.float32


def test_known_answers():
  # Identical views with uncorrelated, centred ±1 columns: C = I up to eps.
  z = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1]], np.float32)
  loss, m = losses.barlow_twins(z, z, lambd=1.0)
  np.testing.assert_allclose(m["corr_diag"], 1 / (1 + 1e-5), rtol=1e-6)
  np.testing.assert_allclose(m["off_diag"], 0, atol=1e-12)
  assert float(loss) < 1e-9
  # Second view negated: C = −I, on-diagonal (1 − (−1))² per dimension.
  loss, _ = losses.barlow_twins(z, -z, lambd=1.0)
  np.testing.assert_allclose(loss, 2 * 4, rtol=1e-4)


def test_bfloat16_inputs_compute_in_float32():
  z1, z2 = _views()
  loss, _ = losses.barlow_twins(jnp.asarray(z1, jnp.bfloat16),
                                jnp.asarray(z2, jnp.bfloat16))
  assert loss.dtype == jnp.float32


def test_statistics_are_over_the_global_batch():
  # 8 devices, 4 rows each: per-device BatchNorm or a per-device C would
  # give another value (the official code syncs both).
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  z1, z2 = (x.astype(np.float32) for x in _views(32, 16, seed=3))
  f = jax.jit(lambda a, b: losses.barlow_twins(a, b)[0])
  sharded = f(jax.device_put(z1, shard), jax.device_put(z2, shard))
  np.testing.assert_allclose(sharded, official_numpy(z1, z2)[0], rtol=2e-5)


def test_loss_and_gradients_equal_the_official_pytorch_code():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  z1, z2 = (x.astype(np.float32) for x in _views(32, 16, seed=4))
  t1 = torch.tensor(z1, requires_grad=True)
  t2 = torch.tensor(z2, requires_grad=True)
  bn = torch.nn.BatchNorm1d(16, affine=False).train()
  c = bn(t1).T @ bn(t2)
  c = c / 32
  on_diag = torch.diagonal(c).add(-1).pow(2).sum()
  n = c.shape[0]  # the official off_diagonal(): a strided view
  off = c.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()
  loss = on_diag + 0.0051 * off.pow(2).sum()
  loss.backward()
  ours, grads = jax.value_and_grad(
      lambda a, b: losses.barlow_twins(a, b)[0], argnums=(0, 1))(z1, z2)
  np.testing.assert_allclose(ours, loss.item(), rtol=1e-5)
  np.testing.assert_allclose(grads[0], t1.grad.numpy(), rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(grads[1], t2.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_four_step_cli_run_on_the_comparison_config(data_dir, tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device: one compile
  subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train",
       f"--config={helpers.ROOT}/configs/compare_cpu.py:barlow_twins,"
       "hierarchical_shapes", f"--workdir={tmp_path}",
       "--config.data.dataset=hierarchical_shapes/32_small",
       f"--config.data.data_dir={data_dir}", "--config.model.width=4",
       "--config.projector=32-32", "--config.data.image_size=16",
       "--config.batch_size=32", "--config.num_steps=4",
       "--config.log_every=1", "--config.progress=False",
       "--config.summary_eval=False"], check=True, cwd=helpers.ROOT,
      env=env, timeout=600)
  rows = [l for l in open(tmp_path / "metrics.jsonl") if '"on_diag"' in l]
  assert len(rows) == 4
