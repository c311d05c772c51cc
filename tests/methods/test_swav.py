"""SwAV: Sinkhorn codes and the swapped loss against the official code."""
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses
from ssljax import train_state
from ssljax import train_step
from ssljax.data import pipeline
from ssljax.methods import swav
from tests import helpers


def official_sinkhorn(out, epsilon=0.05, iterations=3):
  """facebookresearch/swav main_swav.py distributed_sinkhorn, one process,
  NumPy float64."""
  q = np.exp(out / epsilon).T
  b, k = q.shape[1], q.shape[0]
  q = q / q.sum()
  for _ in range(iterations):
    q = q / q.sum(axis=1, keepdims=True) / k
    q = q / q.sum(axis=0, keepdims=True) / b
  return (q * b).T


def official_loss(scores, num_assign=2, temperature=0.1, queues=None,
                  kernel=None):
  """main_swav.py train(): the loss loop over crops_for_assign. With a
  queue in use: out = torch.cat((torch.mm(queue[i], prototypes.t()), out))
  and q = distributed_sinkhorn(out)[-bs:]."""
  loss = 0
  for i in range(num_assign):
    if queues is None:
      q = official_sinkhorn(scores[i])
    else:
      out = np.concatenate([queues[i] @ kernel, scores[i]])
      q = official_sinkhorn(out)[-len(scores[i]):]
    sub = 0
    for v in np.delete(np.arange(len(scores)), i):
      x = scores[v] / temperature
      logp = x - x.max(1, keepdims=True)
      logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
      sub -= np.mean(np.sum(q * logp, axis=1))
    loss += sub / (len(scores) - 1)
  return loss / num_assign


def _scores(n=16, k=12, views=4, seed=0):
  rng = np.random.default_rng(seed)
  z = rng.normal(size=(views, n, 8))
  z /= np.linalg.norm(z, axis=-1, keepdims=True)
  c = rng.normal(size=(8, k))
  c /= np.linalg.norm(c, axis=0, keepdims=True)
  return [(zi @ c).astype(np.float32) for zi in z]


def test_sinkhorn_matches_the_official_code_and_equipartitions():
  s = _scores()[0]
  q = np.asarray(losses.sinkhorn(s))
  np.testing.assert_allclose(q, official_sinkhorn(s.astype(np.float64)),
                             rtol=1e-4, atol=1e-7)
  np.testing.assert_allclose(q.sum(1), 1, rtol=1e-5)  # an assignment
  # Iterated to convergence, prototypes are used equally (each n / K).
  q = np.asarray(losses.sinkhorn(s, iterations=200))
  np.testing.assert_allclose(q.sum(0), 16 / 12, rtol=1e-3)


def test_loss_matches_the_official_loop_with_local_views():
  scores = _scores(views=4)  # 2 global + 2 local
  loss, _ = losses.swav([jnp.asarray(s) for s in scores])
  np.testing.assert_allclose(
      loss, official_loss([s.astype(np.float64) for s in scores]), rtol=1e-5)


def test_codes_are_over_the_global_batch():
  mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
  shard = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  scores = _scores(n=32, views=2, seed=3)
  f = jax.jit(lambda a, b: losses.swav([a, b])[0])
  sharded = f(*(jax.device_put(s, shard) for s in scores))
  np.testing.assert_allclose(
      sharded, official_loss([s.astype(np.float64) for s in scores]),
      rtol=1e-5)


def test_loss_and_gradient_equal_the_official_pytorch_code():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  scores = _scores(views=3, seed=4)
  ts = [torch.tensor(s, requires_grad=True) for s in scores]

  def distributed_sinkhorn(out, epsilon=0.05, iters=3):  # one process
    q = torch.exp(out / epsilon).t()
    b, k = q.shape[1], q.shape[0]
    q /= torch.sum(q)
    for _ in range(iters):
      q /= torch.sum(q, dim=1, keepdim=True)
      q /= k
      q /= torch.sum(q, dim=0, keepdim=True)
      q /= b
    q *= b
    return q.t()
  loss = 0
  for i in range(2):
    with torch.no_grad():
      q = distributed_sinkhorn(ts[i].detach())
    sub = 0
    for v in np.delete(np.arange(3), i):
      sub -= torch.mean(torch.sum(
          q * torch.nn.functional.log_softmax(ts[v] / 0.1, dim=1), dim=1))
    loss += sub / 2
  loss /= 2
  loss.backward()
  ours, grads = jax.value_and_grad(lambda *s: losses.swav(list(s))[0],
                                   argnums=(0, 1, 2))(*scores)
  np.testing.assert_allclose(ours, loss.item(), rtol=1e-5)
  for g, t in zip(grads, ts):
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_prototypes_stay_unit_norm_and_frozen_at_first(data_dir, shapes_train):
  cfg = helpers.tiny_config(data_dir)
  cfg.method = "swav"
  cfg.update(swav.default_config())
  cfg.projector = "32-16"
  cfg.swav.update(num_prototypes=10, freeze_prototypes_steps=1)
  cfg.optimizer.update(name="adamw", base_lr=1e-2, warmup_epochs=0.0)
  s = train_state.setup(cfg, 1000, 24)
  state = train_state.init_state(s, 0)
  kernel = lambda st: np.asarray(st.params["prototypes"]["kernel"])
  np.testing.assert_allclose(np.linalg.norm(kernel(state), axis=0), 1,
                             rtol=1e-5)
  batch = pipeline.to_global(next(pipeline.train_iterator(
      shapes_train, global_batch=32, seed=0,
      crops=pipeline.Crops(num_global=2, global_size=16))), s.mesh)
  step = train_step.jit_train_step(s)
  before = kernel(state)
  state, m = step(state, batch)  # step 0: frozen
  assert float(m["prototypes_frozen"]) == 1
  np.testing.assert_allclose(kernel(state), before, atol=1e-6)
  state, m = step(state, batch)  # step 1: trained, then projected
  assert float(m["prototypes_frozen"]) == 0
  assert np.abs(kernel(state) - before).max() > 1e-4
  np.testing.assert_allclose(np.linalg.norm(kernel(state), axis=0), 1,
                             rtol=1e-5)


def test_four_step_cli_run_on_the_comparison_config(data_dir, tmp_path):
  env = dict(os.environ, XLA_FLAGS="")  # one device: one compile
  subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train",
       f"--config={helpers.ROOT}/configs/compare_cpu.py:swav,"
       "hierarchical_shapes", f"--workdir={tmp_path}",
       "--config.data.dataset=hierarchical_shapes/32_small",
       f"--config.data.data_dir={data_dir}", "--config.model.width=4",
       "--config.projector=32-16", "--config.swav.num_prototypes=20",
       "--config.data.image_size=16", "--config.batch_size=32",
       "--config.num_steps=4", "--config.log_every=1",
       "--config.progress=False", "--config.summary_eval=False"],
      check=True, cwd=helpers.ROOT, env=env, timeout=600)
  rows = [l for l in open(tmp_path / "metrics.jsonl")
          if '"prototypes_frozen"' in l]
  assert len(rows) == 4


def test_queue_codes_match_the_official_concatenation():
  scores = _scores(n=8, views=3, seed=5)
  rng = np.random.default_rng(6)
  queues = rng.normal(size=(2, 24, 8))
  queues /= np.linalg.norm(queues, axis=-1, keepdims=True)
  kernel = rng.normal(size=(8, 12))
  kernel /= np.linalg.norm(kernel, axis=0, keepdims=True)
  loss, _ = losses.swav([jnp.asarray(s) for s in scores], queue_scores=[
      jnp.asarray(q @ kernel, jnp.float32) for q in queues])
  want = official_loss([s.astype(np.float64) for s in scores],
                       queues=queues, kernel=kernel)
  np.testing.assert_allclose(loss, want, rtol=1e-5)
  # The queue changes the codes: without it the loss differs.
  assert abs(float(losses.swav([jnp.asarray(s) for s in scores])[0])
             - want) > 1e-3


def test_queue_fills_from_its_start_and_joins_the_codes_when_full(data_dir):
  cfg = helpers.tiny_config(data_dir)
  cfg.method = "swav"
  cfg.update(swav.default_config())
  cfg.projector = "32-16"
  cfg.swav.update(num_prototypes=10, queue_length=64, queue_start_step=1)
  s = train_state.setup(cfg, 1000, 24)
  state = train_state.init_state(s, 0)
  net_params = {k: v for k, v in state.params.items() if k != "probe"}
  variables = {"params": net_params, "batch_stats": state.batch_stats}
  kernel = np.asarray(net_params["prototypes"]["kernel"], np.float64)
  mstate = state.method_state
  assert mstate["queue"].shape == (2, 64, 16)
  rng = np.random.default_rng(0)
  used = []
  for step in range(4):  # pushes at steps 1, 2, 3; full (64) from step 3
    views = [jnp.asarray(rng.normal(size=(32, 16, 16, 3)), jnp.float32)
             for _ in range(2)]
    out, _ = s.net.apply(variables, views, train=True,
                         mutable=["batch_stats"])
    before = jax.device_get(mstate)
    loss, aux = s.objective.loss(variables, mstate, views,
                                 jax.random.key(step))
    used.append(float(aux.metrics["queue_used"]))
    if step == 3:
      np.testing.assert_allclose(loss, official_loss(
          [np.asarray(x, np.float64) for x in out["scores"]],
          queues=before["queue"].astype(np.float64), kernel=kernel),
          rtol=1e-4)
    else:
      np.testing.assert_allclose(loss, losses.swav(out["scores"])[0],
                                 rtol=1e-6)
    mstate, _ = s.objective.update_state(aux.state, variables, step)
    after = jax.device_get(mstate)
    if step == 0:
      np.testing.assert_array_equal(after["queue"], before["queue"])
    else:  # this batch's embeddings, at the ring position
      ptr = int(before["queue_ptr"])
      np.testing.assert_allclose(after["queue"][:, ptr:ptr + 32],
                                 np.stack(out["z"]), rtol=1e-6)
  assert used == [0, 0, 0, 1]
  assert int(mstate["queue_filled"]) == 64 and int(mstate["queue_ptr"]) == 32
  with pytest.raises(ValueError, match="multiple of the global batch_size"):
    cfg.swav.queue_length = 48
    train_state.setup(cfg, 1000, 24)
