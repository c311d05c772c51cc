import json
import os

import jax
import numpy as np
import pytest

from ssljax import checkpoint
from ssljax import saved_runs
from ssljax import train
from ssljax import train_state
from ssljax import train_step
import ssljax.data
from ssljax.data import pipeline
from tests import helpers


def _batch(cfg, data_dir, global_batch=32):
  src = ssljax.data.load_source(cfg.data.dataset, "train", data_dir)
  it = pipeline.train_iterator(src, global_batch=global_batch, seed=0,
                               crops=pipeline.Crops(
                                   num_global=cfg.data.num_global,
                                   global_size=16))
  return next(it)


def _assert_trees_close(a, b, rtol, atol):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol,
                               atol=atol)


def _method_config(data_dir, method, **overrides):
  """Tiny config with the CPU comparison's settings for `method`."""
  c = helpers.load_config("compare_cpu", f"{method},mnist5k")
  t = helpers.tiny_config(data_dir, **overrides)
  for k in ("method", "loss", "ema", "projector", "predictor", "decoder",
            "corruption", "augment", "mae", "support_set", "ijepa", "dino"):
    if k in c:
      t[k] = c[k]
  t.data.num_global = c.data.num_global
  if method in ("byol", "nnclr"):
    t.projector, t.predictor = "32-32", "16-32"
  if method == "nnclr":
    t.support_set.size = 64  # two batches: the FIFO wraps within a test
  elif method in ("vicreg", "mveb", "simclr"):
    t.projector = "32-32"
  elif method == "mae":  # 16 px, patch 4: 16 patches, 4 visible
    t.model = dict(name="vit_tiny", patch_size=4, image_size=16, depth=2,
                   width=32, num_heads=2, dtype="float32")
    t.mae.update(decoder_width=16, decoder_depth=1, decoder_heads=2)
  elif method == "ijepa":  # 16 px, patch 2: the 8×8 grid of compare_cpu
    t.model = dict(name="vit_tiny", patch_size=2, image_size=16, depth=2,
                   width=32, num_heads=2, pool="gap", dtype="float32")
    t.ijepa.update(pred_width=16, pred_depth=1)
  elif method == "dino":  # a ViT student with drop path, its teacher without
    t.model = dict(name="vit_tiny", patch_size=4, image_size=16, depth=2,
                   width=32, num_heads=2, drop_path=0.2, dtype="float32")
    t.dino.update(hidden_dim=32, bottleneck_dim=16, out_dim=64)
  return t


@pytest.mark.parametrize("method", ["vicreg", "mveb", "ae", "mae", "ijepa",
                                    "dino"])
def test_one_device_equals_eight_devices(data_dir, method):
  # MVEB with the "global" score scope must not depend on the device count.
  cfg = _method_config(data_dir, method)
  if method == "mveb":
    cfg.loss.score_scope = "global"
  if method == "ae":  # the masks come from the method's key
    cfg.corruption.update(kind="mask", loss_on="masked", patch_size=4)
  batch = _batch(cfg, data_dir)
  out = {}
  for n in (1, 8):
    s = train_state.setup(cfg, 1000, 20, mesh=train_state.make_mesh(jax.devices()[:n]))
    state = train_state.init_state(s, 0)
    new, metrics = train_step.jit_train_step(s)(
        state, pipeline.to_global(batch, s.mesh))
    out[n] = jax.device_get((new.params, new.batch_stats, metrics))
  np.testing.assert_allclose(out[1][2]["loss"], out[8][2]["loss"], rtol=1e-5)
  _assert_trees_close(out[1][0], out[8][0], rtol=1e-5, atol=2e-6)
  # BatchNorm statistics come from the global batch (sync BN).
  _assert_trees_close(out[1][1], out[8][1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("method", ["byol", "nnclr"])
def test_interrupted_run_is_bit_identical(data_dir, tmp_path, method):
  # BYOL, NNCLR: the method state (EMA target, support set) is checkpointed
  # and resumed too (VICReg's, stateless, in tests/test_reliability.py).
  cfg = _method_config(data_dir, method, num_steps=6)
  full = train.train_and_evaluate(cfg, str(tmp_path / "full"))
  # checkpointed at other steps (every 5, and at the stop): where a run
  # saves is not what it computes, so the resume accepts it (NON_SEMANTIC)
  cut = _method_config(data_dir, method, num_steps=6, stop_after_steps=3,
                       **{"checkpoint.every": 5})
  half = train.train_and_evaluate(cut, str(tmp_path / "cut"))
  assert int(half.step) == 3
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "cut"))
  assert int(resumed.step) == 6
  if method == "byol":
    assert jax.tree.leaves(resumed.method_state["ema"]["params"])
  if method == "nnclr":  # 6 batches of 32 through a FIFO of 64: wrapped
    assert int(resumed.method_state["ptr"]) == (6 * 32) % 64
  for a, b in zip(jax.tree.leaves(jax.device_get(full)),
                  jax.tree.leaves(jax.device_get(resumed))):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(l) for l in open(tmp_path / "cut" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == list(range(1, 7))
  keys = {"byol": {"cosine", "ema_momentum", "z_std_mean", "z_std_min",
                   "p_std_mean", "p_std_min", "p_norm"},
          "nnclr": {"contrast_accuracy", "nn_cosine"}}[method]
  for r in rows:
    assert keys | {"loss", "lr", "epoch", "images_per_sec",
                   "seconds_per_step", "probe_loss", "rep_std_mean",
                   "rep_std_min"} <= set(r)
  assert os.listdir(tmp_path / "full" / "tb")


def test_data_seed_varies_the_data_and_not_the_init(data_dir, tmp_path):
  # data.seed == seed is the default run bit for bit; another data.seed
  # changes what is trained on, not the init.
  out = {}
  for name, data_seed in (("default", None), ("same", 0), ("other", 1)):
    cfg = helpers.tiny_config(data_dir, num_steps=2, **{"data.seed": data_seed})
    out[name] = jax.tree.leaves(jax.device_get(
        train.train_and_evaluate(cfg, str(tmp_path / name)).params))
  for a, b in zip(out["default"], out["same"]):
    np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b)
                 for a, b in zip(out["default"], out["other"]))
  # seed 1 with data.seed 0: seed 1's init, seed 0's data stream and
  # augmentation draws.
  c0 = helpers.tiny_config(data_dir)
  c1 = helpers.tiny_config(data_dir, seed=1, **{"data.seed": 0})
  s = train_state.setup(c0, 1000, 24)
  st0, st1 = train_state.init_state(s, 0), train_state.init_state(s, 1)
  assert (train_step.data_seed(c0), train_step.data_seed(c1)) == (0, 0)
  np.testing.assert_array_equal(train_step.augment_key(c1, st1),
                                train_step.augment_key(c0, st0))
  c1_alone = helpers.tiny_config(data_dir, seed=1)  # seed 1's own stream
  assert not np.array_equal(train_step.augment_key(c1_alone, st1),
                            train_step.augment_key(c0, st0))
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(st0.params), jax.tree.leaves(st1.params)))


def test_encoder_seed_takes_the_encoder_alone(data_dir, tmp_path):
  # seed 1 with encoder_seed 0: seed 0's encoder (params and BN stats) bit
  # for bit, seed 1's projector, predictor and probe; BYOL's EMA target is
  # a copy of that mixed online network.
  get = lambda st: jax.device_get((st.params, st.batch_stats,
                                   st.method_state["ema"]))
  cfgs = {name: _method_config(data_dir, "byol", seed=seed,
                               encoder_seed=enc)
          for name, seed, enc in (("s0", 0, None), ("s1", 1, None),
                                  ("mix", 1, 0), ("same", 1, 1))}
  st = {n: get(train_state.init_state(train_state.setup(c, 1000, 24), c.seed))
        for n, c in cfgs.items()}
  for a, b in zip(jax.tree.leaves(st["same"]), jax.tree.leaves(st["s1"])):
    np.testing.assert_array_equal(a, b)
  (p0, b0, _), (p1, _, _), (pm, bm, em) = st["s0"], st["s1"], st["mix"]
  assert set(pm) == set(p1) and "encoder" in pm and len(pm) > 2
  for name in pm:
    want = p0 if name == "encoder" else p1
    for a, b in zip(jax.tree.leaves(pm[name]), jax.tree.leaves(want[name])):
      np.testing.assert_array_equal(a, b)
  assert not all(np.array_equal(a, b) for a, b in zip(
      jax.tree.leaves(p0["encoder"]), jax.tree.leaves(p1["encoder"])))
  for a, b in zip(jax.tree.leaves(bm["encoder"]),
                  jax.tree.leaves(b0["encoder"])):
    np.testing.assert_array_equal(a, b)
  online = {k: v for k, v in pm.items() if k in em["params"]}
  for a, b in zip(jax.tree.leaves(em["params"]), jax.tree.leaves(online)):
    np.testing.assert_array_equal(a, b)
  # ssljax-eval --step=0 evaluates that same init.
  wd = tmp_path / "mix"
  wd.mkdir()
  checkpoint.write_config(str(wd), cfgs["mix"])
  _, variables, _, _ = saved_runs.load(str(wd), 0)
  for a, b in zip(jax.tree.leaves(jax.device_get(variables["params"])),
                  jax.tree.leaves(pm)):
    np.testing.assert_array_equal(a, b)


def test_workdirs_from_before_the_seed_fields_resume(data_dir):
  # A config.json written before data.seed and encoder_seed existed ran as
  # if both were unset: resuming it is no config change.
  new = helpers.tiny_config(data_dir).to_dict()
  old = {k: v for k, v in new.items() if k != "encoder_seed"}
  old["data"] = {k: v for k, v in new["data"].items() if k != "seed"}
  assert checkpoint.config_diff(old, new) == []
  assert checkpoint.config_diff(old, {**new, "encoder_seed": 2}) == [
      ("encoder_seed", None, 2)]


def test_nonfinite_stop_raises_and_keeps_no_bad_checkpoint(data_dir, tmp_path):
  cfg = helpers.tiny_config(data_dir, **{"data.std": (0.0, 0.0, 0.0)})
  with pytest.raises(train.NonFiniteError, match="at step 1 "):
    train.train_and_evaluate(cfg, str(tmp_path))
  mngr = checkpoint.manager(str(tmp_path), cfg.checkpoint)
  assert mngr.latest_step() is None


def test_nonfinite_skip_drops_updates_and_counts(data_dir, tmp_path):
  cfg = helpers.tiny_config(data_dir, nonfinite="skip",
                            **{"data.std": (0.0, 0.0, 0.0)})
  s = train_state.setup(cfg, 1000, 24)  # hierarchical_shapes: 24 fine classes
  init = jax.device_get(train_state.init_state(s, cfg.seed).params)
  state = train.train_and_evaluate(cfg, str(tmp_path))
  assert int(state.num_skipped) == 4
  for a, b in zip(jax.tree.leaves(init), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert rows[-1]["num_skipped"] == 4


def test_finite_check_runs_once_not_once_per_leaf(data_dir):
  finite = lambda *t: bool(jax.jit(train_step._finite)(*t))
  ok = {"a": np.zeros(3, np.float32), "b": np.full(2, -0.0, np.float32),
        "i": np.arange(3)}
  assert finite(ok)
  for bad in (np.inf, -np.inf, np.nan):
    assert not finite(ok, {"c": np.array([1.0, bad], np.float32)})
  # The flag gates every leaf of the new state. XLA:CPU once fused the
  # check's chain of per-leaf adds into each leaf's select: quadratic HLO
  # (228 fusions larger than the leaf count here; I-JEPA at compare_cpu size compiled
  # for 12+ minutes in 13.6 GB). Now one fusion holds it.
  cfg = _method_config(data_dir, "ijepa")
  s = train_state.setup(cfg, 1000, 20)
  state = jax.eval_shape(lambda: train_state.init_state(s, 0))
  batch = jax.eval_shape(lambda: pipeline.to_global(_batch(cfg, data_dir),
                                                    s.mesh))
  hlo = train_step.jit_train_step(s).lower(state, batch).compile().as_text()
  sizes, size = [], None
  for line in hlo.splitlines():
    if line.startswith("%fused_computation"):
      size = 0
    elif line.startswith("}") and size is not None:
      sizes.append(size)
      size = None
    elif size is not None:
      size += 1
  n = len(jax.tree.leaves(state))
  assert len(sizes) > n and sum(k > n for k in sizes) <= 1, sorted(sizes)[-5:]


def test_workdir_with_another_config_is_refused(data_dir, tmp_path):
  train.train_and_evaluate(helpers.tiny_config(data_dir, num_steps=2),
                           str(tmp_path))
  other = helpers.tiny_config(data_dir, num_steps=4,
                              **{"loss.sim_coeff": 10.0})
  with pytest.raises(ValueError, match="loss.sim_coeff: 25.0"):
    train.train_and_evaluate(other, str(tmp_path))
  state = train.train_and_evaluate(other, str(tmp_path), override_config=True)
  assert int(state.step) == 4


def test_bad_names_and_batch_sizes(data_dir):
  with pytest.raises(ValueError, match="valid: ae, barlow_twins, byol, dino, "
                     "downstream, ijepa, mae, mveb, nnclr, rdae, sag_vicreg, simclr, "
                     "swav, vicreg"):
    train_state.setup(helpers.tiny_config(data_dir, method="moco"), 1000, 20)
  with pytest.raises(ValueError, match="valid: resnet18"):
    train_state.setup(helpers.tiny_config(data_dir, **{"model.name": "vgg"}),
                1000, 20)
  with pytest.raises(ValueError, match="valid: lars"):
    train_state.setup(helpers.tiny_config(data_dir, **{"optimizer.name": "adam"}),
                1000, 20)
  with pytest.raises(ValueError, match="not divisible by the 8 devices"):
    train_state.setup(helpers.tiny_config(data_dir, batch_size=36), 1000, 20)
  with pytest.raises(ValueError, match="valid: stop, skip"):
    train_state.setup(helpers.tiny_config(data_dir, nonfinite="ignore"), 1000, 20)


def test_summary_monitor_and_eval_cli(data_dir, tmp_path, monkeypatch):
  from ssljax import optim  # pylint: disable=g-import-not-at-top
  from ssljax import saved_runs  # pylint: disable=g-import-not-at-top
  cfg = helpers.tiny_config(data_dir, num_steps=2, eval_every=1,
                            summary_eval=True, **{
                                "knn.k": (5, 20),
                                "eval.coarse_label_keys": ("coarse_label",)})
  train.train_and_evaluate(cfg, str(tmp_path))
  rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
  assert any("eval/rep/label/true/knn_k5" in r for r in rows)

  def no_optimizer(*args, **kwargs):
    raise AssertionError("evaluation built an optimizer")

  monkeypatch.setattr(optim, "make", no_optimizer)
  summary = json.load(open(tmp_path / "summary.json"))
  for key in ("random_init", "trained"):
    for metric in ("linear_probe_accuracy", "knn_accuracy"):
      assert 0.0 <= summary[key][metric] <= 1.0
  assert summary["trained"]["step"] == 2 and summary["random_init"]["step"] == 0
  results, path = saved_runs.evaluate(
      str(tmp_path), names="knn,ncc,cdnv,hierarchy,rankme,layers,random")
  assert path.endswith("checkpoints/eval_step2.json") and os.path.exists(path)
  np.testing.assert_allclose(results["rep/label/true/knn_k5"],
                             summary["trained"]["knn_accuracy"])
  # every ResNet stage, both label levels, true and random labels
  for layer in ("rep", "stem", "stage1", "stage4"):
    for lv in ("label", "coarse_label"):
      for kind in ("true", "random"):
        assert 0 <= results[f"{layer}/{lv}/{kind}/ncc_test"] <= 1
    assert np.isfinite(results[f"{layer}/tree/true/spearman"])
  assert json.load(open(path))["results"] == results
  assert checkpoint.manager(str(tmp_path), cfg.checkpoint).all_steps(
  ) == [2]  # the JSON beside the step dirs is not mistaken for a step
  init, _ = saved_runs.evaluate(str(tmp_path), step=0, names="knn")
  np.testing.assert_allclose(init["rep/label/true/knn_k5"],
                             summary["random_init"]["knn_accuracy"])
  with pytest.raises(ValueError, match="available: 0 .random init., 2"):
    saved_runs.evaluate(str(tmp_path), step=7)
  with pytest.raises(ValueError, match="Valid: linear"):
    saved_runs.evaluate(str(tmp_path), names="knn,nccc")


@pytest.mark.parametrize("method", ["mveb", "byol", "simclr", "ae", "mae"])
def test_every_method_trains_a_step(data_dir, method):
  overrides = {"data.num_local": 2, "data.local_size": 8} if (
      method == "mveb") else {}
  cfg = _method_config(data_dir, method, **overrides)
  s = train_state.setup(cfg, 1000, 20)
  src = ssljax.data.load_source(cfg.data.dataset, "train", data_dir)
  crops = pipeline.Crops(num_global=cfg.data.num_global, global_size=16,
                         num_local=cfg.data.num_local, local_size=8)
  batch = next(pipeline.train_iterator(src, global_batch=32, seed=0,
                                       crops=crops))
  state = train_state.init_state(s, 0)
  before = jax.device_get(state.params)  # the step donates `state`
  step = train_step.jit_train_step(s)
  new, m = step(state, pipeline.to_global(batch, s.mesh))
  new, m = step(new, pipeline.to_global(batch, s.mesh))
  m = jax.device_get(m)
  assert np.isfinite(m["loss"]) and int(new.num_skipped) == 0
  moved = jax.tree.leaves(jax.tree.map(
      lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
      before, new.params))
  assert max(moved) > 0
  if method in ("mveb", "byol"):
    assert 0.99 <= m["ema_momentum"] < 1
    gap = jax.tree.leaves(jax.tree.map(
        lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()),
        {k: v for k, v in new.params.items() if k != "probe"},
        new.method_state["ema"]["params"]))
    assert max(gap) > 0  # the target lags the online network
  if method == "ae":
    assert {"recon_mse", "probe_loss"} <= set(m) and new.method_state == {}
  if method == "mveb":
    assert {"align", "entropy", "resultant_length", "tau_v1",
            "tau_v4"} <= set(m)
    assert -1 <= m["align"] <= 1 and 0 <= m["resultant_length"] <= 1
