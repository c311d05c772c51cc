"""FLOPs, memory and MFU of a compiled step (ssljax.perf)."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import perf
from ssljax import train
from tests import helpers


@pytest.mark.parametrize("kind,tflops", [
    ("TPU v4", 275), ("TPU v5 lite", 197), ("TPU v5", 459),
    ("TPU v6 lite", 918), ("NVIDIA H100 80GB HBM3", 989),
    ("NVIDIA H200", 989), ("NVIDIA A100-SXM4-80GB", 312)])
def test_peak_table(kind, tflops):
  assert perf.peak_flops(kind) == tflops * 1e12


def test_unknown_devices_get_no_mfu():
  assert perf.peak_flops("cpu") is None
  r = perf.rates(10, 2.0, 256, 8, 1e9, device_kind="cpu")
  assert "mfu" not in r
  np.testing.assert_allclose(r["examples_per_sec_per_device"], 160.0)
  np.testing.assert_allclose(r["tflops_per_sec_per_device"], 5e-3)
  r = perf.rates(10, 2.0, 256, 8, 1e12, device_kind="TPU v4")
  np.testing.assert_allclose(r["mfu"], 5e12 / 275e12)


def test_compiled_flops_are_per_device():
  # A [256, 512] @ [512, 128] matmul is 2·256·512·128 FLOPs; split over
  # the batch on 8 devices, each device's program does an eighth.
  mesh = jax.sharding.Mesh(np.array(jax.devices()[:8]), ("data",))
  x = jax.device_put(jnp.ones((256, 512)), jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec("data")))
  f = jax.jit(lambda a, b: a @ b)
  c = f.lower(x, jnp.ones((512, 128))).compile()
  assert perf.compiled_flops(c) == 2 * 256 * 512 * 128 / 8
  mem = perf.compiled_memory(c)
  assert mem["arguments"] == (256 * 512 // 8 + 512 * 128) * 4
  assert mem["outputs"] == 256 * 128 // 8 * 4


def test_training_logs_flops_and_per_device_rates(data_dir, tmp_path):
  cfg = helpers.tiny_config(data_dir, num_steps=2)
  train.train_and_evaluate(cfg, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert all(r["flops_per_device_step"] > 0 for r in rows)
  assert all(r["examples_per_sec_per_device"] > 0 for r in rows)
  assert not any("mfu" in r for r in rows)  # CPU: no peak to divide by
  assert len({r["flops_per_device_step"] for r in rows}) == 1
