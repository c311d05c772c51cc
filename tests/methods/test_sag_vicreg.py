import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from ssljax import losses
from ssljax import methods
from ssljax import train_state
from ssljax import train_step
from ssljax import validate
import ssljax.data
from ssljax.data import pipeline
from ssljax.methods import sag_vicreg
from ssljax.methods import vicreg
from tests import helpers


def _config(data_dir, **pairing):
  c = helpers.tiny_config(data_dir)
  c.method = "sag_vicreg"
  c.update(sag_vicreg.default_config())
  c.projector = "32-32"
  c.pairing.update(pairing)
  return c


def _views(seed=0, n=32):
  k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
  return [jax.random.normal(k1, (n, 16, 16, 3)),
          jax.random.normal(k2, (n, 16, 16, 3))]


def _loss_and_grad(cfg, method, state, views, total_steps=100):
  net = methods.build(cfg)
  v = methods.init_variables(net, methods.sample_views(cfg.data), 10, 0)
  v = {"params": methods.split_probe(v["params"])[0],
       "batch_stats": v["batch_stats"]}
  obj = method.make_objective(cfg, net, total_steps=total_steps)
  state = state if state is not None else obj.init_state(v)

  def f(params):
    loss, aux = obj.loss(dict(v, params=params), state, views,
                         jax.random.PRNGKey(3))
    return loss, aux.metrics

  (loss, m), g = jax.jit(jax.value_and_grad(f, has_aux=True))(v["params"])
  return float(loss), jax.device_get(m), jax.device_get(g)


@pytest.mark.parametrize("case", ["before_warmup", "weight_zero"])
def test_loss_is_vicreg_exactly_without_pairing(data_dir, case):
  views = _views()
  want, wm, wg = _loss_and_grad(_config(data_dir), vicreg, {}, views)
  if case == "before_warmup":  # step 49 < round(0.5 · 100)
    cfg = _config(data_dir, warmup_fraction=0.5)
    state = {"step": jnp.int32(49)}
  else:  # well past the warm-up, but α = 0
    cfg = _config(data_dir, weight=0.0)
    state = {"step": jnp.int32(90)}
  got, m, g = _loss_and_grad(cfg, sag_vicreg, state, views)
  assert got == want  # bit for bit
  for k in ("repr_loss", "std_loss", "cov_loss"):
    assert m[k] == wm[k]
  assert m["pair_weight"] == 0.0 and m["partner_self"] == 1.0
  assert m["partner_other_image"] == 0.0
  for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(wg)):
    np.testing.assert_array_equal(a, b)


def test_pairing_changes_the_loss_after_warmup(data_dir):
  views = _views()
  want, _, _ = _loss_and_grad(_config(data_dir), vicreg, {}, views)
  cfg = _config(data_dir, warmup_fraction=0.5, ramp_fraction=0.0)
  got, m, _ = _loss_and_grad(cfg, sag_vicreg, {"step": jnp.int32(50)}, views)
  assert m["pair_weight"] == 0.5 and got != want
  assert m["partner_self"] < 0.5 and 0 < m["partner_other_view"] < 1
  np.testing.assert_allclose(
      got, want + 25 * 0.5 * (m["pair_loss"] - m["repr_loss"]), rtol=1e-5)


def test_pair_term_on_a_hand_built_case():
  # 3 images, d = 2: rows [z1_0, z1_1, z1_2, z2_0, z2_1, z2_2].
  z1 = np.array([[0., 0.], [1., 0.], [0., 2.]], np.float32)
  z2 = np.array([[0., 1.], [1., 1.], [3., 2.]], np.float32)
  y = np.concatenate([z1, z2])
  # rows 0, 1: cross-image; 2, 3, 5: the other view; 4: itself
  partners = np.array([1, 0, 5, 0, 4, 2])
  pair = np.mean((y - y[partners]) ** 2)
  assert pair == pytest.approx((1 + 1 + 9 + 1 + 0 + 9) / 12)
  alpha = 0.25
  loss, m = sag_vicreg.sag_loss(jnp.asarray(z1), jnp.asarray(z2),
                                jnp.asarray(partners), alpha)
  loss_v, mv = losses.vicreg(z1, z2)
  assert float(m["pair_loss"]) == pytest.approx(pair, rel=1e-6)
  np.testing.assert_allclose(
      loss, 25 * ((1 - alpha) * mv["repr_loss"] + alpha * pair)
      + 25 * mv["std_loss"] + mv["cov_loss"], rtol=1e-6)
  assert float(m["partner_other_view"]) == pytest.approx(3 / 6)
  assert float(m["partner_self"]) == pytest.approx(1 / 6)
  assert float(m["partner_other_image"]) == pytest.approx(2 / 6)
  # Partners that are all the other view: pair = repr, loss = VICReg's.
  other = jnp.asarray([3, 4, 5, 0, 1, 2])
  loss_o, m_o = sag_vicreg.sag_loss(jnp.asarray(z1), jnp.asarray(z2), other,
                                    0.8)
  np.testing.assert_allclose(m_o["pair_loss"], mv["repr_loss"], rtol=1e-6)
  np.testing.assert_allclose(loss_o, loss_v, rtol=1e-6)
  # Gradient of the pair term: 2(y_a − y_p(a))/(2n·d) on each anchor, and
  # with both ends moving also −2(y_a − y_p(a))/(2n·d) on each partner.
  def pair_grad(stop):
    f = lambda y: sag_vicreg.sag_loss(y[:3], y[3:], jnp.asarray(partners),
                                      1.0, stop_partner_grad=stop)[1][
                                          "pair_loss"]
    return np.asarray(jax.grad(f)(jnp.asarray(y)))
  diff = 2 * (y - y[partners]) / y.size
  np.testing.assert_allclose(pair_grad(True), diff, atol=1e-6)
  both = diff.copy()
  np.subtract.at(both, partners, diff)
  np.testing.assert_allclose(pair_grad(False), both, atol=1e-6)


def test_pair_weight_schedule():
  p = ml_collections.ConfigDict(dict(weight=0.6, warmup_fraction=0.1,
                                     ramp_fraction=0.2))
  got = [float(sag_vicreg.pair_weight(p, t, 100)) for t in (0, 9, 10, 19,
                                                            29, 99)]
  np.testing.assert_allclose(got, [0, 0, 0.6 / 20, 0.6 * 10 / 20, 0.6, 0.6],
                             rtol=1e-6)
  p.ramp_fraction = 0.0
  assert float(sag_vicreg.pair_weight(p, 9, 100)) == 0.0
  assert float(sag_vicreg.pair_weight(p, 10, 100)) == pytest.approx(0.6)


def _step_config(data_dir, **pairing):
  cfg = _config(data_dir, warmup_fraction=0.0, ramp_fraction=0.0,
                **pairing)
  cfg.augment = "cifar"
  return cfg


def _batch(cfg, data_dir):
  src = ssljax.data.load_source(cfg.data.dataset, "train", data_dir)
  return next(pipeline.train_iterator(
      src, global_batch=32, seed=0,
      crops=pipeline.Crops(num_global=2, global_size=16)))


def test_one_device_equals_eight_devices(data_dir):
  cfg = _step_config(data_dir, graph_features="projector")
  batch = _batch(cfg, data_dir)
  out = {}
  for n in (1, 8):
    s = train_state.setup(cfg, 1000, 20, mesh=train_state.make_mesh(jax.devices()[:n]))
    new, m = train_step.jit_train_step(s)(train_state.init_state(s, 0),
                                     pipeline.to_global(batch, s.mesh))
    out[n] = jax.device_get((new.params, m))
  assert out[1][1]["pair_weight"] == 0.5
  # Same graph and same partners on 1 and 8 devices: the pair statistics
  # are equal, not merely close (a different partner moves them a lot).
  for k in ("partner_self", "partner_other_view", "partner_other_image",
            "pair_same_label", "pair_same_coarse_label"):
    assert out[1][1][k] == out[8][1][k], k
  assert 0 < out[1][1]["partner_other_image"] <= 1
  assert 0 <= out[1][1]["pair_same_label"] <= out[1][1][
      "pair_same_coarse_label"] <= 1
  for k in ("z_std_mean", "z_std_min", "rep_std_mean", "rep_std_min"):
    assert 0 < out[1][1][k] <= 1, k
    np.testing.assert_allclose(out[1][1][k], out[8][1][k], rtol=1e-4,
                               err_msg=k)
  np.testing.assert_allclose(out[1][1]["pair_loss"], out[8][1]["pair_loss"],
                             rtol=1e-5)
  np.testing.assert_allclose(out[1][1]["loss"], out[8][1]["loss"], rtol=1e-5)
  for a, b in zip(jax.tree.leaves(out[1][0]), jax.tree.leaves(out[8][0])):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-6)


def test_ema_graph_trains_and_the_target_lags(data_dir):
  cfg = _step_config(data_dir, graph_source="ema")
  # Pairing starts at step 1: step 0 checks that the pair-label metrics
  # are zero while it is off, step 1 that it is on.
  cfg.pairing.warmup_fraction = 1 / cfg.num_steps
  cfg.ema.base = 0.9
  s = train_state.setup(cfg, 1000, 20)
  state = train_state.init_state(s, 0)
  assert set(state.method_state) == {"step", "ema"}
  step = train_step.jit_train_step(s)
  batch = pipeline.to_global(_batch(cfg, data_dir), s.mesh)
  state, m = step(state, batch)
  m = jax.device_get(m)
  assert m["pair_weight"] == 0.0 and m["partner_self"] == 1.0
  for k in ("partner_other_image", "pair_same_label",
            "pair_same_coarse_label"):
    assert m[k] == 0.0, k
  state, m = step(state, batch)
  m = jax.device_get(m)
  assert np.isfinite(m["loss"]) and int(state.num_skipped) == 0
  assert int(state.method_state["step"]) == 2
  assert m["pair_weight"] == 0.5 and m["partner_self"] < 0.5
  assert 0.9 <= m["ema_momentum"] < 1
  gap = max(float(np.abs(np.asarray(a) - np.asarray(b)).max())
            for a, b in zip(
                jax.tree.leaves({k: v for k, v in state.params.items()
                                 if k != "probe"}),
                jax.tree.leaves(state.method_state["ema"]["params"])))
  assert gap > 0


@pytest.mark.parametrize("field,value,match", [
    ("graph_source", "target", "valid: online, ema"),
    ("graph_features", "rep", "valid: encoder, projector"),
    ("affinity", "rbf", "valid: gaussian, self_tuning, cosine"),
    ("sampler", "exact", "valid: walk, power"),
    ("weight", 1.5, r"pairing.weight = 1.5 must be in \[0, 1\]"),
    ("num_neighbors", 63, "batch has 64 rows"),
])
def test_bad_pairing_fields_are_refused_with_valid_values(data_dir, field,
                                                          value, match):
  cfg = _config(data_dir, **{field: value})
  with pytest.raises(validate.ConfigError, match=match):
    validate.check(cfg)
