"""NNCLR: the loss, the support set and the method against solo-learn's code."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses
from ssljax import methods
from ssljax.methods import joint
from ssljax.methods import nnclr
from tests import helpers


def _unit(x):
  return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def solo_learn_step(z1, z2, p1, p2, queue, ptr, temperature):
  """solo-learn's NNCLR.training_step after the networks, in NumPy
  (float64): normalize z, nearest neighbours in the queue, its
  nnclr_loss_func both ways / 2, then dequeue_and_enqueue(z1)."""
  z1, z2 = _unit(z1), _unit(z2)
  nn1 = queue[np.argmax(z1 @ queue.T, axis=1)]
  nn2 = queue[np.argmax(z2 @ queue.T, axis=1)]

  def loss(nn, p):
    logits = _unit(nn) @ _unit(p).T / temperature
    logits = logits - logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    return -np.mean(np.diagonal(logp))
  total = loss(nn1, p2) / 2 + loss(nn2, p1) / 2
  queue = queue.copy()
  queue[ptr:ptr + len(z1)] = z1
  return total, queue, (ptr + len(z1)) % len(queue)


def _inputs(n=16, d=8, q=48, seed=0):
  rng = np.random.default_rng(seed)
  z1 = rng.normal(size=(n, d))
  z2 = z1 + 0.3 * rng.normal(size=(n, d))
  p1, p2 = z1 + 0.5 * rng.normal(size=(n, d)), z2 + 0.5 * rng.normal(
      size=(n, d))
  queue = _unit(rng.normal(size=(q, d)))
  queue[:n] = _unit(z1 + 0.1 * rng.normal(size=(n, d)))  # real neighbours
  return [x.astype(np.float32) for x in (z1, z2, p1, p2, queue)]


def _ours(z1, z2, p1, p2, queue, ptr, temperature=0.1):
  state = {"queue": jnp.asarray(queue), "ptr": jnp.int32(ptr)}
  z1n, z2n = (jnp.asarray(_unit(z)) for z in (z1, z2))
  nn1, nn2 = nnclr.nearest(z1n, state["queue"]), nnclr.nearest(
      z2n, state["queue"])
  loss, _ = losses.nnclr(nn1, p1, nn2, p2, temperature=temperature)
  return loss, nnclr.enqueue(state, z1n)


@pytest.mark.parametrize("ptr", [0, 32])
def test_loss_and_support_set_update_match_solo_learn(ptr):
  z1, z2, p1, p2, queue = _inputs()
  ref, ref_queue, ref_ptr = solo_learn_step(z1, z2, p1, p2, queue, ptr, 0.1)
  loss, state = _ours(z1, z2, p1, p2, queue, ptr)
  np.testing.assert_allclose(loss, ref, rtol=1e-5)
  np.testing.assert_allclose(state["queue"], ref_queue, rtol=1e-6)
  assert int(state["ptr"]) == ref_ptr == (ptr + 16) % 48


def test_the_neighbour_gets_no_gradient_and_the_gradient_matches_torch():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  F = torch.nn.functional
  z1, z2, p1, p2, queue = _inputs(seed=1)
  q = torch.tensor(queue)
  tp1 = torch.tensor(p1, requires_grad=True)
  tp2 = torch.tensor(p2, requires_grad=True)
  with torch.no_grad():  # solo-learn's find_nn
    nn1 = q[(F.normalize(torch.tensor(z1), dim=-1) @ q.T).max(dim=1)[1]]
    nn2 = q[(F.normalize(torch.tensor(z2), dim=-1) @ q.T).max(dim=1)[1]]

  def loss_func(nn, p, temperature=0.1):  # solo-learn's nnclr_loss_func
    logits = F.normalize(nn, dim=-1) @ F.normalize(p, dim=-1).T / temperature
    return F.cross_entropy(logits, torch.arange(p.size(0)))
  ref = loss_func(nn1, tp2) / 2 + loss_func(nn2, tp1) / 2
  ref.backward()
  n1, n2 = jnp.asarray(nn1.numpy()), jnp.asarray(nn2.numpy())
  loss, grads = jax.value_and_grad(
      lambda a, b, c, d: losses.nnclr(a, b, c, d)[0], argnums=(0, 1, 3))(
          n1, p1, n2, p2)
  np.testing.assert_allclose(loss, ref.item(), rtol=1e-5)
  assert not np.any(np.asarray(grads[0]))  # stop-gradient on the neighbour
  np.testing.assert_allclose(grads[1], tp1.grad.numpy(), rtol=1e-4,
                             atol=1e-7)
  np.testing.assert_allclose(grads[2], tp2.grad.numpy(), rtol=1e-4,
                             atol=1e-7)


def test_negatives_come_from_the_global_batch():
  # 8 devices, 2 rows each: per-device negatives (solo-learn's) would give
  # another loss.
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  z1, z2, p1, p2, queue = _inputs(seed=2)
  ref, _, _ = solo_learn_step(z1, z2, p1, p2, queue, 0, 0.1)
  nn1, nn2 = (queue[np.argmax(_unit(z) @ queue.T, axis=1)] for z in (z1, z2))
  put = lambda x: jax.device_put(x, shard)
  f = jax.jit(lambda a, b, c, d: losses.nnclr(a, b, c, d)[0])
  np.testing.assert_allclose(f(put(nn1), put(p1), put(nn2), put(p2)), ref,
                             rtol=1e-5)


def test_the_objective_carries_the_fifo_through_steps(data_dir):
  cfg = helpers.tiny_config(data_dir)
  cfg.method = "nnclr"
  cfg.update(nnclr.default_config())
  cfg.projector, cfg.predictor = "32-16", "16-16"
  cfg.support_set.size = 64
  net = methods.build(cfg)
  v = methods.init_variables(net, methods.sample_views(cfg.data), 10, 0)
  v = {"params": methods.split_probe(v["params"])[0],
       "batch_stats": v["batch_stats"]}
  obj = nnclr.make_objective(cfg, net)
  state = obj.init_state(v)
  np.testing.assert_allclose(np.linalg.norm(state["queue"], axis=1), 1,
                             rtol=1e-5)
  step = jax.jit(obj.loss)
  rng = np.random.default_rng(0)
  for i in range(3):  # 32 rows per step into 64: 0 -> 32 -> 0 -> 32
    views = [jnp.asarray(rng.normal(size=(32, 16, 16, 3)), jnp.float32)
             for _ in range(2)]
    _, aux = step(v, state, views, jax.random.PRNGKey(i))
    assert int(aux.state["ptr"]) == (32 * (i + 1)) % 64
    # What is written: view 1's L2-normalized projections (solo-learn).
    z1 = joint.forward(net, v, views)[0]["z"][0]
    written = aux.state["queue"][32 * (i % 2):32 * (i % 2) + 32]
    np.testing.assert_allclose(written, _unit(np.asarray(z1)), rtol=1e-4,
                               atol=1e-6)
    state = aux.state
  with pytest.raises(ValueError, match="multiple of batch_size"):
    cfg.support_set.size = 48
    nnclr.make_objective(cfg, net)


def test_four_step_cli_run_on_the_comparison_config(data_dir, tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device: one compile
  subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train",
       f"--config={helpers.ROOT}/configs/compare_cpu.py:nnclr,"
       "hierarchical_shapes", f"--workdir={tmp_path}",
       "--config.data.dataset=hierarchical_shapes/32_small",
       f"--config.data.data_dir={data_dir}", "--config.model.width=4",
       "--config.projector=32-16", "--config.predictor=16-16",
       "--config.support_set.size=64", "--config.data.image_size=16",
       "--config.batch_size=32", "--config.num_steps=4",
       "--config.log_every=1", "--config.progress=False",
       "--config.summary_eval=False"], check=True, cwd=helpers.ROOT,
      env=env, timeout=600)
  rows = [l for l in open(tmp_path / "metrics.jsonl") if '"nn_cosine"' in l]
  assert len(rows) == 4
