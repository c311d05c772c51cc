"""Classes held out of pretraining (data.holdout_*): the filter and its
wiring (train split filtered, evaluation split whole, old workdirs)."""
import numpy as np
import pytest

from ssljax import checkpoint
from ssljax import train
from ssljax import train_state
from ssljax import validate
import ssljax.data
from ssljax.data import pipeline
from tests import helpers


def test_exclude_classes_removes_exactly_those_in_order(shapes_train):
  labels = np.array([shapes_train[i]["label"] for i in range(
      len(shapes_train))])
  sub = pipeline.exclude_classes(shapes_train, (3, 17))
  kept = np.array([sub[i]["label"] for i in range(len(sub))])
  assert len(sub) == np.sum(~np.isin(labels, (3, 17))) < len(shapes_train)
  assert not np.isin(kept, (3, 17)).any()
  assert set(kept) == set(range(24)) - {3, 17}
  np.testing.assert_array_equal(sub.indices,
                                np.flatnonzero(~np.isin(labels, (3, 17))))
  # deterministic: the same examples, same order, whichever way labels come
  again = pipeline.exclude_classes(shapes_train, [17, 3], labels=labels)
  np.testing.assert_array_equal(again.indices, sub.indices)
  assert sub.dataset_info is shapes_train.dataset_info
  with pytest.raises(ValueError, match="fields coarse_label, image, label, super_label"):
    pipeline.exclude_classes(shapes_train, (1,), key="fine")


def test_pretraining_stream_never_sees_held_out_classes(data_dir,
                                                        shapes_train):
  cfg = helpers.tiny_config(data_dir, **{"data.holdout_key": "coarse_label",
                                         "data.holdout_classes": (2,)})
  np.testing.assert_array_equal(
      ssljax.data.load_labels(cfg.data.dataset, "train", data_dir,
                              "coarse_label"),
      [shapes_train[i]["coarse_label"] for i in range(len(shapes_train))])
  src = train.pretraining_source(cfg, shapes_train)
  assert 0 < len(src) < len(shapes_train)
  np.testing.assert_array_equal(src.indices,
                                train.pretraining_source(cfg,
                                                         shapes_train).indices)
  crops = pipeline.Crops(global_size=8)
  it = pipeline.train_iterator(src, global_batch=100, crops=crops, seed=0,
                               num_epochs=2)
  seen = np.concatenate([b["coarse_label"] for b in it])
  assert len(seen) == 2 * (len(src) // 100) * 100
  assert 2 not in seen and set(seen) == {0, 1, 3, 4, 5}
  cfg.data.holdout_classes = ()
  assert train.pretraining_source(cfg, shapes_train) is shapes_train
  cfg.data.holdout_classes = (2, 9)
  with pytest.raises(validate.ConfigError, match=r"\[9\] are not "
                     "'coarse_label' classes"):
    train.pretraining_source(cfg, shapes_train)


def test_holdout_config_checks_and_old_workdirs_resume(data_dir):
  cfg = helpers.tiny_config(data_dir)
  cfg.eval.cli = "knn,unseen"
  with pytest.raises(validate.ConfigError, match="set data.holdout_classes"):
    validate.check(cfg)
  cfg.data.holdout_classes = (1, -2)
  with pytest.raises(validate.ConfigError, match="integers ≥ 0"):
    validate.check(cfg)
  cfg.data.holdout_classes = (1,)
  validate.check(cfg)
  # A config.json written before the holdout fields existed is the same
  # config as one with their defaults.
  new = helpers.tiny_config(data_dir).to_dict()
  old = {**new, "data": {k: v for k, v in new["data"].items()
                         if not k.startswith("holdout")}}
  assert checkpoint.config_diff(old, new) == []
  held = {**new, "data": {**new["data"], "holdout_classes": [3]}}
  assert checkpoint.config_diff(old, held) == [
      ("data.holdout_classes", [], [3])]


def test_evaluator_scores_the_held_out_classes(data_dir, shapes_train):
  from ssljax import monitor  # pylint: disable=g-import-not-at-top
  cfg = helpers.tiny_config(data_dir, **{"data.holdout_key": "coarse_label",
                                         "data.holdout_classes": (0,)})
  s = train_state.setup(cfg, 1000, 20)
  state = train_state.init_state(s, 0)
  test_src = ssljax.data.load_source(cfg.data.dataset, "test", data_dir)
  ev = monitor.Evaluator(cfg, monitor.make_represent(s.net, cfg.data, s.mesh),
                         s.mesh, shapes_train, test_src)
  assert ev.label_keys == ("label", "coarse_label")  # extracted for holdout
  out = ev.run(train.variables(state), "ncc,unseen")
  # coarse class 0 = fine classes 0..4: 5-way NCC among them alone
  assert {"rep/label/unseen/ncc_test", "rep/label/seen/ncc_test",
          "rep/label/true/ncc_test"} <= set(out)
  assert not any("coarse_label/" in k for k in out)  # not an eval level
