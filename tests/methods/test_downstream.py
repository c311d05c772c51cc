"""Downstream protocols (ssljax.methods.downstream) on the pretraining loop."""
import json

import jax
import numpy as np
import pytest

from ssljax import saved_runs
from ssljax import train
from ssljax import weights
from ssljax.data import pipeline
from ssljax.methods import downstream
from tests import helpers


def _config(data_dir, init_from="", mode="linear", **kw):
  c = helpers.load_config("eval/linear_cpu", init_from or None)
  if not init_from:  # the tiny model of tests.helpers
    t = helpers.tiny_config(data_dir)
    c.model, c.data.image_size = t.model, t.data.image_size
    c.data.dataset, c.data.data_dir = t.data.dataset, data_dir
  c.downstream.mode = mode
  c.update(dict(num_steps=4, batch_size=32, progress=False, log_every=1,
                summary_eval=False))
  c.checkpoint.every = 2
  for k, v in kw.items():
    c.update_from_flattened_dict({k: v})
  return c


def _leaves(tree):
  return [np.asarray(x) for x in jax.tree.leaves(jax.device_get(tree))]


def test_linear_trunk_is_the_pretrained_one_and_never_moves(
    tiny_workdir, tmp_path):
  cfg = _config(None, tiny_workdir, **{"downstream.head_norm": "bn"})
  state = train.train_and_evaluate(cfg, str(tmp_path))
  _, pre, _, _ = saved_runs.load(tiny_workdir)
  for name in ("params", "batch_stats"):  # weights and BN statistics
    for a, b in zip(_leaves(pre[name]["encoder"]),
                    _leaves(getattr(state, name)["encoder"])):
      np.testing.assert_array_equal(a, b)
  # The head trained; its BatchNorm has statistics but no scale / offset.
  assert "head_norm" not in state.params
  assert set(state.batch_stats["head_norm"]) == {"mean", "var"}
  assert np.abs(np.asarray(state.params["head"]["kernel"])).max() > 0
  # The frozen group has no optimizer state (optax.set_to_zero).
  sizes = sum(x.size for x in jax.tree.leaves(state.opt_state))
  trainable = sum(x.size for k, v in state.params.items() if k != "encoder"
                  for x in jax.tree.leaves(v))
  assert sizes < 4 * trainable
  # The run records which pretraining checkpoint it started from.
  summary = json.loads((tmp_path / "summary.json").read_text())
  assert summary["initialized_from"] == [{"workdir": tiny_workdir,
                                          "step": 4}]
  r, _ = saved_runs.evaluate(str(tmp_path), names="classify")
  assert 0 <= r["logits/label/true/top1"] <= r["logits/label/true/top5"] <= 1
  # Exported, the trained classifier (its BN folded in) gives the run's
  # evaluation logits; it was written as zeros before.
  variables = {"params": state.params, "batch_stats": state.batch_stats}
  sd = weights.to_state_dict(cfg, variables, cfg.downstream.num_classes)
  x = np.random.default_rng(0).normal(size=(5, 16, 16, 3))
  out = downstream.build(cfg).apply(variables, x, method="represent")
  np.testing.assert_allclose(
      np.asarray(out["rep"]) @ sd["fc.weight"].T + sd["fc.bias"],
      out["logits"], rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="--num_classes=24"):
    weights.to_state_dict(cfg, variables, 1000)


def test_finetune_moves_the_trunk_and_its_statistics(data_dir, tiny_workdir,
                                                     tmp_path):
  cfg = _config(data_dir, tiny_workdir, "finetune",
                **{"downstream.trunk_lr_scale": 0.1})
  state = train.train_and_evaluate(cfg, str(tmp_path))
  _, pre, _, _ = saved_runs.load(tiny_workdir)
  for name in ("params", "batch_stats"):
    gap = max(float(np.abs(a - b).max()) for a, b in zip(
        _leaves(pre[name]["encoder"]),
        _leaves(getattr(state, name)["encoder"])))
    assert gap > 0, name


def test_layer_decay_multiplies_each_vit_block():
  cfg = helpers.load_config("eval/linear_cpu")
  cfg.model = dict(name="vit_tiny", patch_size=4, image_size=16, depth=3,
                   width=32, num_heads=2)
  cfg.downstream.update(mode="finetune", layer_decay=0.5, trunk_lr_scale=1.0)
  net = downstream.build(cfg)
  params = jax.eval_shape(lambda: net.init(
      jax.random.PRNGKey(0), [np.zeros((1, 16, 16, 3))], train=False))[
          "params"]
  s = downstream.lr_scales(cfg, params)
  enc = s["encoder"]
  # depth 3: blocks 1..3 at 0.5^3, 0.5^2, 0.5; embeddings 0.5^4; final
  # norm and head 1.
  assert enc["block1"]["fc1"]["kernel"] == 0.125
  assert enc["block2"]["attn"]["query"]["kernel"] == 0.25
  assert enc["block3"]["ln1"]["scale"] == 0.5
  assert enc["patch_embed"]["kernel"] == enc["pos_embed"] == 0.0625
  assert enc["cls_token"] == 0.0625
  assert enc["ln_final"]["scale"] == 1.0 and s["head"]["kernel"] == 1.0
  cfg.downstream.mode = "linear"
  assert set(jax.tree.leaves(downstream.lr_scales(cfg, params)["encoder"])
             ) == {0.0}


MAE_RECIPE = {"augment": "randaugment", "downstream.mixup_alpha": 0.8,
              "downstream.cutmix_alpha": 1.0, "downstream.layer_decay": 0.65}


@pytest.mark.parametrize("mode", ["linear", "finetune", "mae_recipe"])
def test_one_device_equals_eight_devices(data_dir, shapes_train, mode):
  if mode == "mae_recipe":  # RandAugment, erasing, mixup / cutmix, drop path
    cfg = _config(data_dir, mode="finetune", **MAE_RECIPE)
    cfg.model = dict(name="vit_tiny", patch_size=4, image_size=16, depth=2,
                     width=32, num_heads=2, drop_path=0.1)
  else:
    cfg = _config(data_dir, mode=mode, **{"downstream.head_norm": "bn"})
  batch = next(pipeline.train_iterator(
      shapes_train, global_batch=32, seed=0,
      crops=pipeline.Crops(num_global=1, global_size=16)))
  m = helpers.metrics_on_1_and_8_devices(cfg, batch)
  for k in ("loss", "train_top1", "probe_loss"):
    np.testing.assert_allclose(m[1][k], m[8][k], rtol=1e-5, err_msg=k)


def test_interrupted_run_is_bit_identical(tiny_workdir, tmp_path):
  cfg = _config(None, tiny_workdir, "finetune", num_steps=4)
  full = train.train_and_evaluate(cfg, str(tmp_path / "full"))
  cut = _config(None, tiny_workdir, "finetune", num_steps=4,
                stop_after_steps=2)
  train.train_and_evaluate(cut, str(tmp_path / "cut"))
  resumed = train.train_and_evaluate(cfg, str(tmp_path / "cut"))
  for a, b in zip(_leaves(full), _leaves(resumed)):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(l) for l in open(tmp_path / "cut" / "metrics.jsonl")]
  assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_a_head_that_does_not_fit_the_data_is_refused(tiny_workdir,
                                                      tmp_path):
  cfg = _config(None, tiny_workdir, **{"downstream.num_classes": 10})
  with pytest.raises(Exception, match="num_classes=24"):
    train.train_and_evaluate(cfg, str(tmp_path))
