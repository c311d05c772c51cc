"""BYOL's collapse diagnostics (`ssljax.methods.byol.diagnostics`)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import losses
from ssljax import methods
import ssljax.data
from ssljax.data import pipeline
from ssljax.methods import byol
from tests import helpers

KEYS = {"cosine", "p_norm", "z_std_mean", "z_std_min", "p_std_mean",
        "p_std_min"}


def _config(data_dir):
  c = helpers.tiny_config(data_dir)
  c.method = "byol"
  c.update(byol.default_config())
  c.projector, c.predictor = "32-32", "16-32"
  return c


def _metrics(cfg, views):
  """The objective's metrics on `views` at initialization (the target is
  the online network then, so the cosine is high but not 1)."""
  net = methods.build(cfg)
  v = methods.init_variables(net, methods.sample_views(cfg.data), 10, 0)
  v = {"params": methods.split_probe(v["params"])[0],
       "batch_stats": v["batch_stats"]}
  obj = byol.make_objective(cfg, net, total_steps=100)
  loss, aux = jax.jit(obj.loss)(v, obj.init_state(v), views,
                                jax.random.PRNGKey(0))
  return float(loss), jax.device_get(aux.metrics)


def test_diagnostics_hand_built():
  # Predictions at 0° and 90° from the other view's target: cosines 1, 0.
  p = [jnp.array([[3., 0.], [0., 4.]]), jnp.array([[0., 2.], [1., 0.]])]
  t = [jnp.array([[0., 1.], [1., 0.]]), jnp.array([[5., 0.], [1., 0.]])]
  z = [jnp.array([[1., 0.], [0., 1.]]), jnp.array([[1., 0.], [0., 1.]])]
  m = byol.diagnostics(z, p, t)
  assert set(m) == KEYS
  # p1·t2: rows (1, 0) = 1 cos, (0, 1)·(1, 0) = 0; p2·t1: (0,1)·(0,1) = 1,
  # (1,0)·(1,0) = 1: mean 3/4.
  assert float(m["cosine"]) == pytest.approx(0.75)
  loss, _ = losses.byol(p[0], p[1], t[0], t[1])
  assert float(m["cosine"]) == pytest.approx(1 - float(loss) / 4)
  assert float(m["p_norm"]) == pytest.approx((3 + 4 + 2 + 1) / 4)
  assert float(m["z_std_mean"]) == pytest.approx(0.5)
  assert float(m["z_std_min"]) == pytest.approx(0.5)


def test_cosine_is_one_minus_a_quarter_of_the_loss(data_dir):
  k1, k2 = jax.random.split(jax.random.PRNGKey(0))
  views = [jax.random.normal(k1, (32, 16, 16, 3)),
           jax.random.normal(k2, (32, 16, 16, 3))]
  loss, m = _metrics(_config(data_dir), views)
  assert KEYS <= set(m)
  assert 0 < m["cosine"] < 1
  np.testing.assert_allclose(m["cosine"], 1 - loss / 4, rtol=1e-5,
                             atol=1e-6)
  assert m["p_norm"] > 0
  # Normalized embeddings of width 32: std per dimension <= 1/sqrt(32).
  for x in ("z", "p"):
    assert 0 < m[f"{x}_std_min"] < m[f"{x}_std_mean"] <= 32 ** -0.5 + 1e-6


def test_collapsed_input_gives_zero_std(data_dir):
  # Every image and view the same: every embedding row is the same up to
  # the CPU kernels' row-dependent rounding (equal rows give exactly 0,
  # tests/test_diagnostics.py), against ~0.1 on random views. In float64:
  # each BatchNorm over identical rows divides that rounding by sqrt(eps),
  # and on some CPUs (AMD EPYC, oneDNN) float32 rounding grew to a std of
  # 0.04 through the trunk; float64's stays far below the bound.
  cfg = _config(data_dir)
  cfg.model.dtype = "float64"
  with jax.enable_x64(True):
    x = jax.random.normal(jax.random.PRNGKey(1), (1, 16, 16, 3), jnp.float64)
    views = [jnp.tile(x, (32, 1, 1, 1))] * 2
    _, m = _metrics(cfg, views)
  for k in ("z_std_mean", "z_std_min", "p_std_mean", "p_std_min"):
    assert m[k] < 1e-6, k
  assert m["z_std_min"] <= m["z_std_mean"]
  # Exactly identical rows: each BatchNorm outputs its bias (0 at init), so
  # the predictions are 0 too; the diagnostics stay finite.
  assert np.isfinite(m["p_norm"])


def test_one_device_equals_eight_devices(data_dir):
  cfg = _config(data_dir)
  cfg.augment = "cifar"
  src = ssljax.data.load_source(cfg.data.dataset, "train", data_dir)
  batch = next(pipeline.train_iterator(
      src, global_batch=32, seed=0,
      crops=pipeline.Crops(num_global=2, global_size=16)))
  out = helpers.metrics_on_1_and_8_devices(cfg, batch)
  for k in sorted(KEYS | {"rep_std_mean", "rep_std_min", "loss"}):
    assert np.isfinite(out[1][k]) and out[1][k] > 0, k
    np.testing.assert_allclose(out[1][k], out[8][k], rtol=1e-4, err_msg=k)


def test_recipe_heads_end_without_bias_as_the_official_mlp():
  """deepmind-research/byol's MLP: the last Linear has no bias (projector
  and predictor); ssljax's default keeps one (earlier runs)."""
  cfg = helpers.load_config("byol_resnet50_imagenet")
  shapes = jax.eval_shape(methods.init_fn(cfg, 10)[1])["params"]
  for head in ("projector", "predictor"):
    assert set(shapes[head]["fc2"]) == {"kernel"}, head
    assert set(shapes[head]["fc1"]) == {"kernel", "bias"}, head
  cfg.last_bias = True
  shapes = jax.eval_shape(methods.init_fn(cfg, 10)[1])["params"]
  assert set(shapes["predictor"]["fc2"]) == {"kernel", "bias"}
