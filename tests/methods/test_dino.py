"""DINO: loss, center and schedules against the official code."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssljax import losses
from ssljax.methods import dino
from tests import helpers


def official_numpy(student, teacher, center, student_temp=0.1,
                   teacher_temp=0.04, momentum=0.9):
  """facebookresearch/dino DINOLoss.forward + update_center, one process,
  NumPy float64 (student: all views, teacher: the two global ones)."""
  def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)
  qs = [softmax((t - center) / teacher_temp) for t in teacher]
  total, n = 0, 0
  for iq, q in enumerate(qs):
    for v, s in enumerate(student):
      if v == iq:
        continue
      logp = np.log(softmax(s / student_temp))
      total += np.mean(np.sum(-q * logp, axis=-1))
      n += 1
  batch_center = np.concatenate(teacher).sum(0) / (2 * len(teacher[0]))
  return total / n, center * momentum + batch_center * (1 - momentum)


def _outputs(n=16, k=32, views=4, seed=0):
  rng = np.random.default_rng(seed)
  student = [rng.normal(size=(n, k)) for _ in range(views)]
  teacher = [s[:] + 0.3 * rng.normal(size=(n, k)) for s in student[:2]]
  center = 0.1 * rng.normal(size=(k,))
  return student, teacher, center


def test_loss_and_center_match_the_official_code():
  student, teacher, center = _outputs()
  loss, _, new = losses.dino([jnp.asarray(s, jnp.float32) for s in student],
                             [jnp.asarray(t, jnp.float32) for t in teacher],
                             jnp.asarray(center, jnp.float32))
  ref, ref_center = official_numpy(student, teacher, center)
  np.testing.assert_allclose(loss, ref, rtol=1e-5)
  np.testing.assert_allclose(new, ref_center, rtol=1e-5, atol=1e-7)


def test_center_is_over_the_global_batch():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  student, teacher, center = _outputs(n=32, views=2, seed=1)
  put = lambda x: jax.device_put(jnp.asarray(x, jnp.float32), shard)
  f = jax.jit(lambda s, t, c: losses.dino(s, t, c)[::2])
  loss, new = f([put(s) for s in student], [put(t) for t in teacher],
                jnp.asarray(center, jnp.float32))
  ref, ref_center = official_numpy(student, teacher, center)
  np.testing.assert_allclose(loss, ref, rtol=1e-5)
  np.testing.assert_allclose(new, ref_center, rtol=1e-5, atol=1e-7)


def test_gradient_matches_the_official_pytorch_loss():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  F = torch.nn.functional
  student, teacher, center = _outputs(views=3, seed=2)
  ts = torch.tensor(np.concatenate(student), dtype=torch.float32,
                    requires_grad=True)
  tt = torch.tensor(np.concatenate(teacher), dtype=torch.float32)
  tc = torch.tensor(center, dtype=torch.float32)
  # DINOLoss.forward's body, one process.
  student_out = (ts / 0.1).chunk(3)
  teacher_out = F.softmax((tt - tc) / 0.04, dim=-1).detach().chunk(2)
  total, n = 0, 0
  for iq, q in enumerate(teacher_out):
    for v in range(len(student_out)):
      if v == iq:
        continue
      total += torch.sum(-q * F.log_softmax(student_out[v], dim=-1),
                         dim=-1).mean()
      n += 1
  (total / n).backward()
  grads = jax.grad(lambda *s: losses.dino(
      list(s), [jnp.asarray(t, jnp.float32) for t in teacher],
      jnp.asarray(center, jnp.float32))[0], argnums=(0, 1, 2))(
          *[jnp.asarray(s, jnp.float32) for s in student])
  np.testing.assert_allclose(np.concatenate(grads), ts.grad.numpy(),
                             rtol=1e-4, atol=1e-7)


def test_teacher_temperature_schedule_is_the_official_linspace():
  d = ml_collections.ConfigDict(dict(warmup_teacher_temp=0.04,
                                     teacher_temp=0.07,
                                     warmup_teacher_temp_epochs=30))
  ref = np.concatenate((np.linspace(0.04, 0.07, 30), np.ones(70) * 0.07))
  ours = [float(dino.teacher_temperature(d, jnp.float32(e)))
          for e in range(100)]
  np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_weight_normalized_last_layer():
  for norm in (True, False):
    head = dino.DINOHead(out_dim=6, hidden_dim=8, bottleneck_dim=4,
                         norm_last_layer=norm)
    x = jnp.ones((3, 5))
    p = head.init(jax.random.PRNGKey(0), x)["params"]
    assert ("last_layer_g" in p) == (not norm)
    big = dict(p, last_layer_v=p["last_layer_v"] * 10.0)
    # Each output unit's weight vector is normalized: scaling v is a no-op.
    np.testing.assert_allclose(head.apply({"params": big}, x),
                               head.apply({"params": p}, x), rtol=1e-5)


def test_four_step_cli_run_on_the_comparison_config(data_dir, tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device: one compile
  subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train",
       f"--config={helpers.ROOT}/configs/compare_cpu.py:dino,"
       "hierarchical_shapes", f"--workdir={tmp_path}",
       "--config.data.dataset=hierarchical_shapes/32_small",
       f"--config.data.data_dir={data_dir}", "--config.model.width=4",
       "--config.dino.hidden_dim=16", "--config.dino.bottleneck_dim=8",
       "--config.dino.out_dim=32", "--config.data.image_size=16",
       "--config.batch_size=32", "--config.num_steps=4",
       "--config.log_every=1", "--config.progress=False",
       "--config.summary_eval=False"], check=True, cwd=helpers.ROOT,
      env=env, timeout=600)
  rows = [l for l in open(tmp_path / "metrics.jsonl")
          if '"teacher_entropy"' in l]
  assert len(rows) == 4
