"""ssljax.results: reading workdirs and experiment results (notebooks' API)."""
import json
import os

from etils import epath
import numpy as np
import pytest

from ssljax import results
from ssljax import saved_runs
from tests import helpers


def test_workdir_files(tiny_workdir):
  cfg = results.config(tiny_workdir)
  assert cfg.num_steps == 4 and cfg.method == "vicreg"
  m = results.metrics(tiny_workdir)
  np.testing.assert_array_equal(m["step"], [1, 2, 3, 4])
  assert m["step"].dtype == np.int64 and np.isfinite(m["loss"]).all()
  rows = results.metrics_rows(tiny_workdir)  # + the "final/..." row
  assert [r["step"] for r in rows] == [1, 2, 3, 4, 4]
  assert 0 <= m["final/knn_accuracy"][-1] <= 1 and np.isnan(m["final/knn_accuracy"][0])
  summ = results.summary(tiny_workdir)
  assert summ["trained"]["step"] == 4
  table = results.summary_table(summ)
  assert table.splitlines()[0] == "| metric | random_init | trained |"
  acc = summ["trained"]["linear_probe_accuracy"]
  assert "| linear_probe_accuracy | " in table and f"{100 * acc:.1f}%" in table
  assert table.splitlines()[-1] == "| step | 0 | 4 |"
  ev = results.evals(tiny_workdir)
  assert list(ev) == [4] and ev[4]["evals"] == ["knn", "ncc"]
  assert 0 <= ev[4]["results"]["rep/label/true/ncc_test"] <= 1
  with pytest.raises(FileNotFoundError, match="not a ssljax workdir"):
    results.config(os.path.dirname(tiny_workdir))


def test_metrics_tolerate_a_cut_last_line_and_missing_columns(tmp_path):
  (tmp_path / "metrics.jsonl").write_text(
      '{"step": 1, "loss": 2.0}\n\n{"step": 2, "loss": 1.5, "eval/knn": 0.3}'
      '\n{"step": 3, "loss": 1.')
  m = results.metrics(tmp_path)
  np.testing.assert_array_equal(m["step"], [1, 2])
  np.testing.assert_array_equal(m["loss"], [2.0, 1.5])
  np.testing.assert_array_equal(m["eval/knn"], [np.nan, 0.3])
  assert results.summary(tmp_path) == {} and results.evals(tmp_path) == {}
  with pytest.raises(FileNotFoundError):
    results.metrics(tmp_path / "nowhere")


def test_experiment_results(tiny_workdir, tmp_path):
  helpers.fake_reverse_ssl_results(tiny_workdir, str(tmp_path / "rev"))
  # found from the workdir, its reverse_ssl folder or the file itself
  for where in ("rev", "rev/reverse_ssl", "rev/reverse_ssl/results.json"):
    res = results.reverse_ssl(tmp_path / where)
    assert res["levels"] == ["label", "coarse_label", "super_label"]
  assert results.layers(res)[0] == "stem" and results.layers(res)[-1] == "rep"
  c = results.curve(res, "rep/coarse_label/true/ncc_test")
  assert c.shape == (3,) and np.isfinite(c).all()
  assert np.isnan(results.curve(res, "rep/nothing/true/ncc_test")).all()
  c2 = results.seed_curves([res, res], "rep/coarse_label/true/ncc_test")
  np.testing.assert_array_equal(c2, np.stack([c, c]))
  short = dict(res, epochs=res["epochs"][:2], results=res["results"][:2])
  with pytest.raises(ValueError, match="Results 1 evaluated epochs"):
    results.seed_curves([res, short], "rep/coarse_label/true/ncc_test")
  with pytest.raises(FileNotFoundError, match="No experiment results"):
    results.experiment(tmp_path / "nowhere")
  (tmp_path / "bad.json").write_text('{"epochs": [0]}')
  with pytest.raises(ValueError, match="not a reverse_ssl"):
    results.reverse_ssl(tmp_path / "bad.json")

  helpers.fake_lbr_results(str(tmp_path / "results.json"))
  lbr = results.experiment(tmp_path)
  assert set(lbr) == {"hierarchical_shapes", "mnist5k"}
  t = results.pca_table(lbr["mnist5k"]["pca"])
  np.testing.assert_array_equal(t["p"], [0.25, 0.5, 0.75, 0.9])
  assert np.isnan(t["bottom"][-1]) and np.isfinite(t["top"]).all()
  assert t["full"] == 0.9 and np.isnan(results.pca_table({})["full"])


def test_reverse_ssl_fake_has_the_evaluator_names(tiny_workdir, tmp_path):
  # The fake that the notebook test uses carries exactly the names that
  # ssljax.experiments.reverse_ssl stores (evaluator.run of the config's
  # evals).
  res = json.load(open(helpers.fake_reverse_ssl_results(tiny_workdir,
                                                        str(tmp_path))))
  for layer in ("stem", "stage4", "rep"):
    for lv in res["levels"]:
      for kind in ("true", "random"):
        for metric in ("ncc_train", "ncc_test", "cdnv_train"):
          assert f"{layer}/{lv}/{kind}/{metric}" in res["results"][-1]
  assert "rep/-/-/rankme" in res["results"][0]


def test_gs_paths(bucket, tiny_workdir):
  run = epath.Path(bucket) / "run"
  for name in ("config.json", "metrics.jsonl", "summary.json",
               "checkpoints/eval_step4.json"):
    (run / name).parent.mkdir(parents=True, exist_ok=True)
    (run / name).write_text(open(os.path.join(tiny_workdir, name)).read())
  (run / "metrics.jsonl").write_text(
      (run / "metrics.jsonl").read_text() + '{"step": 5, "lo')
  wd = str(run)
  assert results.config(wd).num_steps == 4
  np.testing.assert_array_equal(results.metrics(wd)["step"], [1, 2, 3, 4])
  assert results.summary(wd) == results.summary(tiny_workdir)
  assert list(results.evals(wd)) == [4]
  (run / "reverse_ssl" / "results.json").write_text(json.dumps(
      {"levels": ["label"], "epochs": [0], "results": [{"rep/label/true/"
                                                        "ncc_test": 0.5}]}))
  assert results.curve(results.reverse_ssl(wd),
                       "rep/label/true/ncc_test").tolist() == [0.5]


def test_represent_matches_the_evaluator(tiny_workdir):
  train, test = results.represent(tiny_workdir, ("train", "test"))
  assert train["step"] == test["step"] == 4
  assert train["x"]["rep"].shape[0] == 1000 and test["x"]["rep"].shape[0] == 200
  # Every class label of the dataset, in source order.
  assert list(test["y"]) == ["label", "coarse_label", "super_label"]
  src = results.source(tiny_workdir, "test")
  np.testing.assert_array_equal(test["y"]["coarse_label"][:5],
                                [src[i]["coarse_label"] for i in range(5)])
  # The same features the evaluator computes (ssljax-eval's kNN).
  _, variables, ev, _ = saved_runs.load(tiny_workdir)
  tr_ref, te_ref = ev.features(variables)
  np.testing.assert_allclose(test["x"]["rep"], te_ref["x"]["rep"], rtol=1e-5,
                             atol=1e-5)
  np.testing.assert_array_equal(train["y"]["label"], tr_ref["y"]["label"])
  init = results.represent(tiny_workdir, "test", step=0, layers=True)
  assert init["step"] == 0 and list(init["x"])[0] == "stem"
  assert list(init["x"])[-1] == "rep" and len(init["x"]) == 6
  assert not np.allclose(init["x"]["rep"], test["x"]["rep"])
  imgs = results.images(tiny_workdir, "train", [3, 0])
  assert imgs.dtype == np.uint8 and imgs.shape == (2, 32, 32, 3)
  np.testing.assert_array_equal(
      imgs[1], results.source(tiny_workdir, "train")[0]["image"])
  assert results.label_names(tiny_workdir, "coarse_label")[0] == "disk"
  assert results.label_names(tiny_workdir, "nothing") is None
  with pytest.raises(ValueError, match="'train' or 'test'"):
    results.represent(tiny_workdir, "validation")


def test_nearest():
  keys = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], np.float32)
  idx = results.nearest(np.array([[2, 0.1], [0, -1]]), keys, k=3)
  np.testing.assert_array_equal(idx[0], [0, 2, 1])
  assert idx[1][0] in (0, 3) and idx.shape == (2, 3)
  assert results.nearest(keys, keys, k=4).shape == (4, 4)
