import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssljax import entropy
from ssljax import train
from ssljax import train_state
from ssljax import train_step
from ssljax import validate
from ssljax.data import pipeline
from ssljax.methods import rdae
from tests import helpers


def _config(**rdae_fields):
  """The toy config, shrunk: 2 inputs, one small hidden layer."""
  cfg = helpers.load_config("rdae_spiral2d")
  cfg.rdae.update(dict(dict(widths="32"), **rdae_fields))
  return cfg


def _points(n=64, seed=0):
  """Noisy circle points [n, 2] as views [n, 1, 1, 3] (third channel 0)."""
  rng = np.random.default_rng(seed)
  t = rng.uniform(0, 2 * np.pi, n)
  x = np.stack([np.cos(t), np.sin(t)], -1) + 0.05 * rng.normal(size=(n, 2))
  views = np.concatenate([x, np.zeros((n, 1))], -1).reshape(n, 1, 1, 3)
  return jnp.asarray(x, jnp.float32), jnp.asarray(views, jnp.float32)


def _init(cfg, seed=0):
  net = rdae.build(cfg)
  _, views = _points()
  return net, net.init(jax.random.PRNGKey(seed), [views[:2]])


def test_network_shapes_code_and_layers():
  cfg = _config(widths="16-24", channels=1)
  cfg.data.image_size = 4
  net = rdae.build(cfg)
  x = jnp.ones((3, 4, 4, 3))
  v = net.init(jax.random.PRNGKey(0), [x])
  p = v["params"]
  assert p["enc1"]["kernel"].shape == (16, 16)  # 4·4·1 inputs
  assert p["enc2"]["kernel"].shape == (16, 24)  # the code
  assert p["dec1"]["kernel"].shape == (24, 16)  # mirrored hidden width
  assert p["out"]["kernel"].shape == (16, 16)
  code, x_hat = net.apply(v, [x])
  assert code.shape == (3, 24) and x_hat.shape == (3, 16)
  assert np.all(np.asarray(code) > 0)  # softplus units
  feats = net.apply(v, x, True, method="represent")
  assert set(feats) == {"rep", "enc1"} and feats["enc1"].shape == (3, 16)
  np.testing.assert_array_equal(feats["rep"], code)
  # only the first channel is read
  y = x.at[..., 1:].set(7.0)
  np.testing.assert_array_equal(net.apply(v, [y])[1], x_hat)


def test_rate_of_identity_and_of_a_collapsed_reconstruction():
  x, _ = _points()
  sigma = entropy.median_bandwidth(x)
  same = rdae.rate_terms(x, x, sigma, 2.0)
  kx = entropy.gram(x, sigma)
  want = 2 * entropy.matrix_entropy(kx) - entropy.matrix_entropy(kx * kx)
  np.testing.assert_allclose(same["rate"], want, rtol=1e-5)
  assert float(same["rate"]) > 0.3
  collapsed = rdae.rate_terms(x, jnp.zeros_like(x), sigma, 2.0)
  np.testing.assert_allclose(collapsed["entropy_xhat"], 0.0, atol=1e-5)
  np.testing.assert_allclose(collapsed["rate"], 0.0, atol=1e-4)


@pytest.mark.parametrize("schedule,rate", [("fixed", "mutual_information"),
                                           ("constraint",
                                            "mutual_information"),
                                           ("fixed", "none")])
def test_loss_is_the_documented_lagrangian(schedule, rate):
  cfg = _config(schedule=schedule, rate=rate, lagrange=3.0, target=0.5)
  net, v = _init(cfg)
  obj = rdae.make_objective(cfg, net)
  x, views = _points()
  state = obj.init_state(v)
  loss, aux = obj.loss(v, state, [views], jax.random.PRNGKey(0))
  x_hat = net.apply(v, [views])[1]
  d = float(jnp.mean(jnp.sum((x_hat - x) ** 2, -1)))
  m = aux.metrics
  np.testing.assert_allclose(m["distortion"], d, rtol=1e-5)
  np.testing.assert_allclose(m["recon_mse"], d / 2, rtol=1e-5)
  if rate == "none":
    np.testing.assert_allclose(loss, d, rtol=1e-5)
    assert "rate" not in m
  else:
    offset = 0.5 if schedule == "constraint" else 0.0
    want = (float(m["rate"]) + 3.0 * (d - offset)) / 4.0
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    sigma = entropy.median_bandwidth(x)
    np.testing.assert_allclose(m["sigma"], 0.1 * sigma, rtol=1e-5)
  np.testing.assert_allclose(aux.state["distortion"], d, rtol=1e-5)
  assert aux.rep.shape == (64, 32)


def test_noise_corrupts_the_input_only():
  cfg = _config(rate="none", noise_std=0.3)
  net, v = _init(cfg)
  obj = rdae.make_objective(cfg, net)
  _, views = _points()
  state = obj.init_state(v)
  a, _ = obj.loss(v, state, [views], jax.random.PRNGKey(0))
  b, _ = obj.loss(v, state, [views], jax.random.PRNGKey(1))
  clean, _ = rdae.make_objective(_config(rate="none"), net).loss(
      v, state, [views], jax.random.PRNGKey(0))
  assert float(a) != float(b) and float(a) != float(clean)


def test_dual_update():
  cfg = _config(schedule="constraint", target=2.0, lagrange=5.0, dual_lr=0.1)
  net, v = _init(cfg)
  obj = rdae.make_objective(cfg, net)
  state = obj.init_state(v)
  for d, factor in ((3.0, np.exp(0.05)), (1.0, np.exp(-0.05)),
                    (100.0, np.exp(0.1)), (0.0, np.exp(-0.1))):
    new, _ = obj.update_state(dict(state, distortion=jnp.float32(d)), v, 0)
    np.testing.assert_allclose(new["lagrange"], 5.0 * factor, rtol=1e-6)
  top = dict(state, lagrange=jnp.float32(rdae.LAGRANGE_RANGE[1]),
             distortion=jnp.float32(10.0))
  new, _ = obj.update_state(top, v, 0)
  np.testing.assert_allclose(new["lagrange"], rdae.LAGRANGE_RANGE[1])
  for fixed in (_config(schedule="fixed"),
                _config(schedule="constraint", rate="none")):
    obj = rdae.make_objective(fixed, net)
    s = dict(obj.init_state(v), distortion=jnp.float32(50.0))
    assert obj.update_state(s, v, 0)[0]["lagrange"] == s["lagrange"]


def _train_in_memory(cfg, steps=150, lr=1e-2):
  net, v = _init(cfg)
  obj = rdae.make_objective(cfg, net)
  _, views = _points(128)
  tx = optax.adam(lr)
  params, opt = v["params"], tx.init(v["params"])
  state = obj.init_state(v)

  @jax.jit
  def step(params, opt, state):
    grad, aux = jax.grad(lambda p: obj.loss({"params": p}, state, [views],
                                            jax.random.PRNGKey(0)),
                         has_aux=True)(params)
    up, opt = tx.update(grad, opt)
    return optax.apply_updates(params, up), opt, aux.state, aux.metrics

  for _ in range(steps):
    params, opt, state, m = step(params, opt, state)
  x, _ = _points(128)
  x_hat = net.apply({"params": params}, [views])[1]
  return rdae.rate_terms(x, x_hat, rdae.kernel_width(x, cfg.rdae), 2.0)[
      "rate"], m["distortion"]


def test_the_rate_term_trades_rate_for_distortion():
  ae_rate, ae_d = _train_in_memory(_config(rate="none", sigma_scale=0.5))
  rd_rate, rd_d = _train_in_memory(_config(lagrange=0.1, sigma_scale=0.5))
  # the plain AE keeps (nearly) all the information, the RD-AE gives up
  # rate and pays in distortion
  assert float(ae_d) < 0.01
  assert float(rd_rate) < 0.5 * float(ae_rate), (rd_rate, ae_rate)
  assert float(rd_d) > 5 * float(ae_d), (rd_d, ae_d)


def test_bad_configs_are_refused_with_the_valid_values():
  cases = {"bandwidth": ("scott", "valid: median, silverman, fixed"),
           "rate": ("kl", "valid: mutual_information, none"),
           "schedule": ("linear", "valid: fixed, constraint"),
           "channels": (4, "valid: 1, 2, 3"),
           "alpha": (0.0, "rdae.alpha = 0.0: must be > 0"),
           "widths": ("64-x", "expected positive layer widths"),
           "noise_std": (-1.0, "rdae.noise_std = -1.0: must be ≥ 0")}
  for field, (value, message) in cases.items():
    with pytest.raises(ValueError, match=message):
      rdae.build(_config(**{field: value}))
  with pytest.raises(ValueError, match="rdae.target = 0.0: must be > 0"):
    rdae.check(_config(schedule="constraint", target=0.0).rdae)
  with pytest.raises(ValueError, match=r"must be in \[1e-06, 1e\+06\]"):
    rdae.check(_config(schedule="constraint", lagrange=0.0).rdae)
  rdae.check(_config(schedule="fixed", lagrange=0.0).rdae)  # λ = 0: rate only
  # the config validator reports them before anything is loaded
  with pytest.raises(validate.ConfigError, match="valid: fixed, constraint"):
    validate.check(_config(schedule="linear"))


def test_one_device_equals_eight_devices():
  cfg = _config(widths="32", schedule="constraint", alpha=1.01)
  cfg.batch_size = 64
  _, views = _points(64)
  batch = {"global": np.asarray(
      np.clip((views * 0.25 + 0.5) * 255, 0, 255), np.uint8)[:, None],
           "label": np.arange(64, dtype=np.int32) % 4}
  out = {}
  for n in (1, 8):
    s = train_state.setup(cfg, 2000, 4, mesh=train_state.make_mesh(jax.devices()[:n]))
    state = train_state.init_state(s, 0)
    new, metrics = train_step.jit_train_step(s)(
        state, pipeline.to_global(batch, s.mesh))
    out[n] = jax.device_get((new.params, new.method_state, metrics))
  for k in ("loss", "rate", "distortion", "sigma"):
    np.testing.assert_allclose(out[1][2][k], out[8][2][k], rtol=2e-5,
                               atol=1e-5)
  for a, b in zip(jax.tree.leaves(out[1][:2]), jax.tree.leaves(out[8][:2])):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_clustered_training_resumes_bit_identically(data_dir, tmp_path):
  def cfg(**kw):
    c = _config(schedule="constraint", target=0.01)
    c.data.data_dir, c.data.num_threads = data_dir, 2
    c.batch_size, c.num_steps, c.log_every = 64, 6, 1
    c.checkpoint.every, c.progress, c.summary_eval = 3, False, False
    c.update(kw)
    return c

  full = train.train_and_evaluate(cfg(), str(tmp_path / "full"))
  half = train.train_and_evaluate(cfg(stop_after_steps=3),
                                  str(tmp_path / "cut"))
  assert int(half.step) == 3
  resumed = train.train_and_evaluate(cfg(), str(tmp_path / "cut"))
  for a, b in zip(jax.tree.leaves(jax.device_get(full)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(l) for l in open(tmp_path / "cut" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 7))
  # early on D ≫ D₀: the dual variable grows every step
  lam = [r["lagrange"] for r in rows]
  assert all(b > a for a, b in zip(lam, lam[1:])), lam
  assert all(np.isfinite(r["rate"]) and r["rate"] >= 0 for r in rows)
