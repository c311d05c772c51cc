"""ssljax.experiments.sag_toy: the nested clusters, the held-out cluster,
the α = 0 identity with VICReg, and a tiny end-to-end run (with
sag_toy_report's tables and figure)."""
import itertools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax.experiments import sag_toy
from ssljax.experiments import sag_toy_report


def tiny_config():
  cfg = sag_toy.default_config()
  cfg.data.train_per_sub, cfg.data.test_per_sub = 30, 15
  # Input and representation both 8-D: the input row reuses the eval
  # kernels XLA compiled for the others (compiles are most of the time).
  cfg.data.ambient, cfg.encoder, cfg.projector = 8, "16-8", "16-16"
  cfg.steps, cfg.batch_size, cfg.seeds, cfg.knn_k = 4, 64, (0,), 5
  cfg.partner_batches = 2
  return cfg


def _level(a, b):
  """0: same sub-cluster, 1: same cluster, 2: same super, 3: across."""
  if a[0] == b[0]:
    return 0
  return 1 if a[1] == b[1] else 2 if a[2] == b[2] else 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_labels_are_a_nested_tree_with_nested_distances(seed):
  c = sag_toy.default_config().data
  c.seed, c.train_per_sub, c.test_per_sub = seed, 30, 15
  data = sag_toy.make_data(c)
  for split, per in (("train", 30), ("test", 15)):
    d = data[split]
    assert np.array_equal(np.bincount(d["fine"]), np.full(12, per))
    np.testing.assert_array_equal(d["coarse"], d["fine"] // 2)
    np.testing.assert_array_equal(d["super"], d["coarse"] // 3)
    assert d["x"].shape == (12 * per, c.ambient)
  # Centres: every pair of a lower level strictly nearer than any of a
  # higher one (by construction, whatever the seed).
  labels = [(f, f // 2, f // 6) for f in range(12)]
  by_level = {lv: [] for lv in (1, 2, 3)}
  for i, j in itertools.combinations(range(12), 2):
    by_level[_level(labels[i], labels[j])].append(
        np.linalg.norm(data["centres"][i] - data["centres"][j]))
  assert max(by_level[1]) < min(by_level[2])
  assert max(by_level[2]) < min(by_level[3])
  np.testing.assert_allclose(by_level[1], 2 * c.r_sub, rtol=1e-5)
  # Points: mean pairwise distance grows with the level, from within a
  # sub-cluster to across super-clusters.
  d = data["train"]
  dist = np.linalg.norm(d["x"][:, None] - d["x"][None], axis=-1)
  lab = np.stack([d["fine"], d["coarse"], d["super"]], 1)
  lv = np.where(lab[:, None, 0] == lab[None, :, 0], 0,
                np.where(lab[:, None, 1] == lab[None, :, 1], 1,
                         np.where(lab[:, None, 2] == lab[None, :, 2], 2, 3)))
  off = ~np.eye(len(lab), dtype=bool)
  means = [dist[(lv == k) & off].mean() for k in range(4)]
  assert means == sorted(means) and len(set(means)) == 4, means


def test_held_out_cluster_is_absent_from_pretraining():
  cfg = tiny_config()
  data = sag_toy.make_data(cfg.data)
  tr = data["train"]
  x_pre = sag_toy.pretrain_x(data, cfg.data.holdout)
  held = tr["coarse"] == cfg.data.holdout
  assert held.sum() == 2 * cfg.data.train_per_sub  # both sub-clusters
  seen_rows = {r.tobytes() for r in x_pre}
  assert not any(r.tobytes() in seen_rows for r in tr["x"][held])
  assert seen_rows == {r.tobytes() for r in tr["x"][~held]}


def _net_batch(cfg):
  data = sag_toy.make_data(cfg.data)
  net = sag_toy.build(cfg)
  x = jnp.asarray(sag_toy.pretrain_x(data, cfg.data.holdout))
  return net, sag_toy.init(net, 0, x), x


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_sag_loss_equals_vicreg_exactly_at_alpha_zero(weight):
  cfg = tiny_config()
  net, variables, x = _net_batch(cfg)
  m = sag_toy.method_config(cfg)
  m.pairing.weight = weight
  objs = sag_toy.objectives(m, net, total_steps=10)
  key = jax.random.key(3)
  views = sag_toy.augment(key, x[:cfg.batch_size], cfg.aug)
  state = objs["sag_vicreg"].init_state(variables)
  state["step"] = jnp.int32(5)  # past the warm-up: α_t = weight
  loss_v, _ = jax.jit(objs["vicreg"].loss)(variables, {}, views, key)
  loss_s, aux = jax.jit(objs["sag_vicreg"].loss)(variables, state, views,
                                                 key)
  assert float(aux.metrics["pair_weight"]) == weight
  if weight == 0:
    assert float(loss_s) == float(loss_v)  # bit for bit
  else:  # the control: walk partners change the loss
    assert float(aux.metrics["partner_other_view"]) < 0.5
    assert abs(float(loss_s) - float(loss_v)) > 1e-3


def test_both_methods_train_on_the_same_batches():
  # With α = 0 SAG-VICReg is VICReg: the same init, batches, views and
  # optimizer must give the same parameters.
  cfg = tiny_config()
  net, variables, x = _net_batch(cfg)
  m = sag_toy.method_config(cfg)
  m.pairing.weight = 0.0
  objs = sag_toy.objectives(m, net, total_steps=cfg.steps)
  out = [sag_toy.make_pretrain(cfg, objs[k], len(x))(variables, x, 0)
         for k in sag_toy.METHODS]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5,
                                                       atol=1e-6),
               out[0][0], out[1][0])
  moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                       out[0][0]["params"], variables["params"])
  assert max(jax.tree.leaves(moved)) > 0  # it did train


def test_tiny_run_writes_results_and_resumes(tmp_path):
  cfg = tiny_config()
  res = sag_toy.run(cfg, str(tmp_path))
  saved = json.loads((tmp_path / "results.json").read_text())
  assert set(saved) == {"setup", "runs", "summary"}
  assert set(saved["runs"]) == {"input", "seed0/random_init", "seed0/vicreg",
                                "seed0/sag_vicreg"}
  for name, run in saved["runs"].items():
    for _, _, key in sag_toy_report.COLUMNS:
      assert math.isfinite(run["metrics"][key]), (name, key)
  assert saved["runs"]["seed0/sag_vicreg"]["metrics"][
      "train/pair_weight"] == pytest.approx(0.5)
  for method in ("input", "random_init", "vicreg", "sag_vicreg"):
    s = saved["summary"][method]["unseen/knn"]
    assert s["n"] == 1 and s["std"] is None
  assert (tmp_path / "sag_toy.png").stat().st_size > 0
  assert "SAG-VICReg − VICReg" in (tmp_path / "results.md").read_text()
  # Resumed: nothing recomputed; other settings refused.
  again = sag_toy.run(cfg, str(tmp_path))
  assert again["runs"] == res["runs"]
  cfg.steps = 5
  with pytest.raises(ValueError, match="another --workdir"):
    sag_toy.run(cfg, str(tmp_path))


@pytest.mark.parametrize("field,value,message", [
    ("data.holdout", 7, "data.holdout = 7: one of the 6 coarse clusters"),
    ("batch_size", 0, "batch_size = 0: must be in \\[1, 2000\\]"),
    ("batch_size", 5000, "batch_size = 5000"),
    ("seeds", (), "seeds = \\(\\): give at least one seed"),
    ("steps", 0, "steps = 0: must be ≥ 1"),
])
def test_out_of_range_settings_are_refused_before_anything_runs(
    tmp_path, field, value, message):
  cfg = sag_toy.default_config()
  cfg.update_from_flattened_dict({field: value})
  with pytest.raises(ValueError, match=message):
    sag_toy.run(cfg, str(tmp_path / "out"))
  assert not (tmp_path / "out").exists()
