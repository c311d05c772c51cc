"""Training-time diagnostics (`ssljax.methods.base`): the collapse monitor
`std_summary` and the pair-label agreement `pair_label_metrics`, alone on
hand-built inputs and wired through train.py's step (1 ≡ 8 devices)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import methods
from ssljax import train_step
import ssljax.data
from ssljax.data import pipeline
from ssljax.methods import base
from ssljax.methods import vicreg
from tests import helpers


def test_std_summary_known_answers():
  # Two directions, each taken by half the rows: per-dimension std 1/2.
  x = jnp.array([[1., 0.], [0., 1.], [1., 0.], [0., 1.]])
  m = base.std_summary(x, "z")
  assert set(m) == {"z_std_mean", "z_std_min"}
  assert float(m["z_std_mean"]) == pytest.approx(0.5)
  assert float(m["z_std_min"]) == pytest.approx(0.5)
  # The rows are L2-normalized first: rescaling rows changes nothing.
  m2 = base.std_summary(x * jnp.array([[3.], [0.5], [7.], [2.]]), "z")
  assert float(m2["z_std_mean"]) == pytest.approx(0.5)
  # All variation along dimension 0: dimension 1 is collapsed.
  m = base.std_summary(jnp.array([[1., 0.], [2., 0.], [-1., 0.], [-3., 0.]]),
                       "z")
  assert float(m["z_std_mean"]) == pytest.approx(0.5)
  assert float(m["z_std_min"]) == 0.0
  # Bounded by 1/sqrt(d) on any input.
  r = jax.random.normal(jax.random.PRNGKey(0), (256, 64))
  m = base.std_summary(r, "z")
  assert 0 < float(m["z_std_min"]) < float(m["z_std_mean"]) <= 1 / 8 + 1e-6


@pytest.mark.parametrize("n", [3, 32, 1000])
def test_std_summary_is_exactly_zero_on_equal_rows(n):
  row = jax.random.normal(jax.random.PRNGKey(1), (1, 48)) * 0.1 + 0.37
  m = base.std_summary(jnp.tile(row, (n, 1)), "z")
  assert float(m["z_std_mean"]) == 0.0 and float(m["z_std_min"]) == 0.0


def test_pair_label_metrics_hand_built():
  # 4 images, 2 views: rows 0..7 are images 0 1 2 3 0 1 2 3.
  fine = jnp.array([0, 0, 1, 2])
  coarse = jnp.array([0, 0, 0, 1])
  # r0→1 (img1): cross, same fine, same coarse; r1→5: other view (out);
  # r2→3 (img3): cross, neither; r3→3: self (out); r4→4: self (out);
  # r5→0 (img0): cross, same fine, same coarse; r6→4 (img0): cross, same
  # coarse only; r7→2 (img2): cross, neither. 5 cross pairs.
  pairs = jnp.array([1, 5, 3, 3, 4, 0, 4, 2])
  m = base.pair_label_metrics(pairs, {"label": fine, "coarse_label": coarse})
  assert set(m) == {"pair_same_label", "pair_same_coarse_label"}
  assert float(m["pair_same_label"]) == pytest.approx(2 / 5)
  assert float(m["pair_same_coarse_label"]) == pytest.approx(3 / 5)
  # No cross-image pair (pairing off: self or the other view): 0, not NaN.
  for p in (jnp.arange(8), (jnp.arange(8) + 4) % 8):
    m = base.pair_label_metrics(p, {"label": fine})
    assert float(m["pair_same_label"]) == 0.0
  assert base.pair_label_metrics(pairs, {}) == {}
  with pytest.raises(ValueError, match="not a multiple"):
    base.pair_label_metrics(jnp.arange(6), {"label": fine})


def test_label_keys_include_the_coarse_keys(data_dir):
  cfg = helpers.tiny_config(data_dir, **{
      "eval.coarse_label_keys": ("coarse_label", "super_label")})
  assert train_step.label_keys(cfg) == ("label", "coarse_label", "super_label")
  assert train_step.label_keys(helpers.tiny_config(data_dir)) == (
      "label", "coarse_label")


class _FixedPairs:
  """VICReg whose LossAux.pairs are the constant `pairs` (set by a test)."""
  default_config = staticmethod(vicreg.default_config)
  build = staticmethod(vicreg.build)
  pairs = None

  @classmethod
  def make_objective(cls, cfg, net, **kw):
    obj = vicreg.make_objective(cfg, net, **kw)

    def loss(variables, state, views, key):
      value, aux = obj.loss(variables, state, views, key)
      return value, aux._replace(pairs=jnp.asarray(cls.pairs))

    return obj._replace(loss=loss)


def _partners(labels, rng):
  """[2n] rows (view-major): even images paired with another image of the
  same label where there is one, odd images with one of another label;
  view 1 rows with the same images' view 0 or view 1 at random."""
  n = len(labels)
  image = []
  for i, y in enumerate(labels):
    same = [j for j in range(n) if j != i and labels[j] == y]
    other = [j for j in range(n) if labels[j] != y]
    image.append(rng.choice(same if (i % 2 == 0 and same) else other))
  image = np.array(image * 2)
  return image + n * rng.integers(0, 2, 2 * n)


def test_train_step_reports_pair_labels_and_rep_std(data_dir, monkeypatch):
  monkeypatch.setitem(methods.METHODS, "fixed_pairs", _FixedPairs)
  cfg = helpers.tiny_config(data_dir, **{
      "eval.coarse_label_keys": ("coarse_label", "super_label")})
  cfg.method = "fixed_pairs"
  cfg.projector = "32-32"
  src = ssljax.data.load_source(cfg.data.dataset, "train", data_dir)
  batch = next(pipeline.train_iterator(
      src, global_batch=32, seed=0, label_keys=train_step.label_keys(cfg),
      crops=pipeline.Crops(num_global=2, global_size=16)))
  assert {"label", "coarse_label", "super_label"} <= set(batch)
  pairs = _partners(batch["label"], np.random.default_rng(0))
  monkeypatch.setattr(_FixedPairs, "pairs", pairs)
  out = helpers.metrics_on_1_and_8_devices(cfg, batch)
  for key in ("label", "coarse_label", "super_label"):
    y = batch[key]
    want = np.mean(y[np.arange(64) % 32] == y[pairs % 32])
    assert 0 < want < 1
    for n in (1, 8):
      assert out[n][f"pair_same_{key}"] == pytest.approx(want, abs=1e-7)
  for k in ("rep_std_mean", "rep_std_min"):
    assert 0 < out[1][k] <= 1
    np.testing.assert_allclose(out[1][k], out[8][k], rtol=1e-4)
