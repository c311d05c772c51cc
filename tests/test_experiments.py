"""ssljax.experiments, shrunk to a few steps."""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest

from ssljax import experiments
from ssljax.experiments import budget
from ssljax.experiments import compare_methods
from ssljax.experiments import reverse_ssl
from ssljax.experiments import sag_vicreg_report
from tests import helpers

NAMES = ("budget", "compare_methods", "learning_by_reconstruction", "rate_distortion",
         "reverse_ssl", "sag_vicreg", "sag_toy")


def _run(name, *args, **kwargs):
  """`python -m ssljax.experiments.NAME ARGS` from the repository root."""
  subprocess.run([sys.executable, "-m", f"ssljax.experiments.{name}",
                  *args], check=True, cwd=helpers.ROOT, **kwargs)


def _one_device_env():
  """The experiments' subprocess environment: one CPU device (the 8
  emulated devices of the other tests only slow their many small compiles)
  and the tests' compilation cache, every compile kept (a warm cache takes
  a run from minutes to about one)."""
  env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=os.path.join(
      tempfile.gettempdir(), "ssljax_test_jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=8", "")
  return env


def test_experiments_import_side_by_side():
  # A fresh process: ssljax.cli.train, imported by other tests, defines
  # --workdir.
  code = "; ".join(f"import ssljax.experiments.{n}" for n in NAMES) + (
      "; from absl import flags; assert 'workdir' not in flags.FLAGS")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=helpers.ROOT)


def test_config_file_finds_the_checkout_from_anywhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert experiments.config_file("compare_cpu") == os.path.join(
      helpers.ROOT, "configs", "compare_cpu.py")
  (tmp_path / "configs").mkdir()
  (tmp_path / "configs" / "compare_cpu.py").write_text("")
  assert experiments.config_file("compare_cpu") == str(
      tmp_path / "configs" / "compare_cpu.py")  # ./configs first
  with pytest.raises(FileNotFoundError, match="checkout of ssljax"):
    experiments.config_file("no_such_config")


def test_reverse_ssl_writes_results_and_plots(data_dir, tmp_path):
  cfg = helpers.load_config("reverse_ssl")
  small = helpers.tiny_config(data_dir)
  cfg.model, cfg.projector, cfg.data = small.model, small.projector, small.data
  cfg.batch_size, cfg.eval_batch_size = 32, 200
  cfg.num_steps, cfg.checkpoint.every, cfg.progress = 2, 2, False
  path, pngs = reverse_ssl.run_experiment(cfg, str(tmp_path))
  out = json.load(open(path))
  assert out["epochs"] == [0.0, 2 / (1000 // 32)]
  assert out["levels"] == ["label", "coarse_label", "super_label"]
  for r in out["results"]:
    assert -1 <= r["rep/tree/true/spearman"] <= 1
    for layer in ("stem", "stage2", "stage4", "rep"):
      for lv in ("label", "coarse_label", "super_label"):
        for kind in ("true", "random"):
          assert 0 <= r[f"{layer}/{lv}/{kind}/ncc_train"] <= 1
          assert np.isfinite(r[f"{layer}/{lv}/{kind}/cdnv_train"])
  for p in pngs:
    assert os.path.getsize(p) > 10_000 and p.endswith(".png")
  assert sorted(os.listdir(os.path.dirname(path))) == [
      "by_layer.png", "cdnv_vs_epoch.png", "ncc_vs_epoch.png", "results.json"]


def test_learning_by_reconstruction_writes_results_and_plots(data_dir,
                                                             tmp_path):
  # A subprocess: main() reads the absl flags, defined only when run.
  _run("learning_by_reconstruction",
       f"--workdir={tmp_path}", f"--data_dir={data_dir}",
       "--datasets=hierarchical_shapes/32_small", "--ps=0.5",
       "--cnn_epochs=1", "--num_align=64", "--align_k=8", "--runs=ae",
       "--align=clean,mask 0.5 patch 4",
       "--train_steps=2", "--batch_size=32", "--num_points=2",
       env=_one_device_env())
  res = json.load(open(tmp_path / "results.json"))["hierarchical_shapes/32_small"]
  pca = res["pca"]
  assert set(pca) == {"full", "top", "bottom", "dims"}
  assert 0 < pca["dims"]["0.5"] < 32 * 32 * 3
  assert all(0 <= pca[s]["0.5"] <= 1 for s in ("top", "bottom"))
  assert set(res["alignment"]) == {"clean", "mask 0.5 patch 4"}
  for curve in res["alignment"].values():
    assert len(curve) == 8 and all(np.diff(curve) >= -1e-3)
    assert 0 < curve[-1] <= 100 + 1e-3
  curve = res["training"]["ae"]["curve"]
  assert [p["step"] for p in curve] == [0, 1, 2]
  assert all(p["recon_loss"] > 0 for p in curve[1:])
  pngs = {p for p in os.listdir(tmp_path) if p.endswith(".png")}
  assert pngs == {f"hierarchical_shapes/32_small_{k}.png".replace("/", "_")
                  for k in ("pca", "alignment", "training")}


def test_sag_vicreg_aggregates_mean_and_std_over_seeds():
  key = "rep/label/true/linear_test"
  runs = {
      "full/vicreg/seed0": {"metrics": {key: 0.5, "b": 1.0}},
      "full/vicreg/seed1": {"metrics": {key: 0.7}},
      "full/vicreg/seed2": {"metrics": {key: 0.9, "b": 3.0}},
      "full/sag_vicreg/seed0": {"metrics": {key: 0.25}},
      "full/byol/seed0": {"error": "Non-finite loss", "train_minutes": 1.0},
      "unseen/vicreg/seed0": {"metrics": {key: 0.1}},
      "unseen/vicreg/seed1": {"metrics": {key: 0.3}},
  }
  s = sag_vicreg_report.aggregate(runs)
  assert set(s) == {"full", "unseen"}
  assert set(s["full"]) == {"vicreg", "sag_vicreg"}  # the failed run is out
  v = s["full"]["vicreg"]
  np.testing.assert_allclose(v[key]["mean"], 0.7)
  np.testing.assert_allclose(v[key]["std"], 0.2)  # sample std (ddof = 1)
  assert v[key]["n"] == 3
  np.testing.assert_allclose([v["b"]["mean"], v["b"]["std"]],
                             [2.0, np.sqrt(2.0)])
  assert v["b"]["n"] == 2  # over the seeds that have the key
  assert s["full"]["sag_vicreg"][key] == {"mean": 0.25, "std": None, "n": 1}
  u = s["unseen"]["vicreg"][key]
  np.testing.assert_allclose([u["mean"], u["std"]], [0.2, np.sqrt(0.02)])
  setup = {"dataset": "d", "train_steps": None, "batch_size": None,
           "holdout_key": "label", "holdout_classes": [1]}
  md = sag_vicreg_report.markdown({"setup": setup, "runs": runs, "summary": s})
  assert "| VICReg | 0.700 ± 0.200 |" in md
  assert "| SAG-VICReg | 0.250 |" in md
  assert "full/byol/seed0" in md  # failed runs are named


def test_sag_vicreg_writes_every_metric_and_figures(data_dir, tmp_path):
  # A subprocess (absl flags).
  env = _one_device_env()
  args = [f"--workdir={tmp_path}", f"--data_dir={data_dir}",
          "--dataset=hierarchical_shapes/32_small", "--seeds=0",
          "--methods=sag_vicreg", "--unseen_methods=sag_vicreg",
          "--train_steps=2", "--batch_size=32",
          "--set=optimizer.weight_decay=0.01,optimizer.name=lars"]
  _run("sag_vicreg", *args, env=env)
  out = json.load(open(tmp_path / "results.json"))
  assert out["setup"]["holdout_classes"] == [2, 5]
  assert out["setup"]["set"] == {"optimizer.weight_decay": 0.01,
                                 "optimizer.name": "lars"}
  for group in ("full", "unseen"):  # --set reaches every run
    run_cfg = json.load(open(tmp_path / "runs" / group / "sag_vicreg"
                             / "seed0" / "config.json"))["optimizer"]
    assert (run_cfg["weight_decay"], run_cfg["name"]) == (0.01, "lars")
  assert set(out["runs"]) == {
      "full/sag_vicreg/seed0", "full/random_init/seed0",
      "unseen/sag_vicreg/seed0", "unseen/random_init/seed0"}
  for name, run in out["runs"].items():
    group = name.split("/")[0]
    keys = [k for *_, ks in sag_vicreg_report.metrics(group) for k in ks]
    assert all(np.isfinite(run["metrics"][k]) for k in keys), name
    assert np.asarray(run["centroids"]["mean"]).shape[0] == 24
    stats = out["summary"][group][name.split("/")[1]]
    assert all(np.isfinite(stats[k]["mean"]) and stats[k]["n"] == 1
               for k in keys)
  # the unseen metrics are on the 8 held-out classes (2 families) alone
  assert "rep/label/unseen/ncc_test" in out["runs"]["unseen/sag_vicreg/seed0"][
      "metrics"]
  md = open(tmp_path / "results.md").read()
  assert "| SAG-VICReg |" in md and "| random init |" in md
  assert "–" not in md  # every cell filled
  figures = tmp_path / "figures"
  expected = {f"{g}_{slug}.png" for g in ("full", "unseen")
              for _, _, slug, _ in sag_vicreg_report.metrics(g)}
  expected |= {"centroids.png", "centroids_unseen.png"}
  assert set(os.listdir(figures)) == expected
  assert all(os.path.getsize(figures / p) > 10_000 for p in expected)
  # Resumes: finished cells are read back, a missing one is redone.
  minutes = out["runs"]["full/sag_vicreg/seed0"]["train_minutes"]
  del out["runs"]["full/random_init/seed0"]
  (tmp_path / "results.json").write_text(json.dumps(out))
  _run("sag_vicreg", *args, env=env)
  again = json.load(open(tmp_path / "results.json"))
  assert set(again["runs"]) == set(out["runs"]) | {"full/random_init/seed0"}
  assert again["runs"]["full/sag_vicreg/seed0"]["train_minutes"] == minutes


def test_budget_runs_checkpoint_every_multiple_and_tables_by_budget():
  assert budget.multiples(4) == [1, 2, 4] and budget.multiples(1) == [1]
  with pytest.raises(ValueError, match="power of two"):
    budget.multiples(3)
  assert experiments.parse_overrides(["optimizer.name=lars",
                                 "optimizer.base_lr=0.3"]) == {
                                     "optimizer.name": "lars",
                                     "optimizer.base_lr": 0.3}
  with pytest.raises(ValueError, match="KEY=VALUE"):
    experiments.parse_overrides(["optimizer.name"])
  # A misspelt key is refused with the valid names (an unlocked ConfigDict
  # would add it and train the default recipe); a wrong type too.
  with pytest.raises(ValueError, match=r"optimizer has no field 'nme'.*"
                     r"'trust_coefficient'"):
    budget.run_config("byol", "hierarchical_shapes", 0, 1,
                      {"optimizer.nme": 0.1}, 390)
  with pytest.raises(ValueError, match="the config has no field 'optimiser'"):
    compare_methods.configure("vicreg", "hierarchical_shapes", 0, {},
                              "test", common={"optimiser.name": "lars"})
  with pytest.raises(TypeError):
    budget.run_config("byol", "hierarchical_shapes", 0, 1,
                      {"optimizer.base_lr": "fast"}, 390)
  cfg = budget.run_config("byol", "hierarchical_shapes/32_small", 1, 4,
                          {"optimizer.name": "lars"}, 390)
  # One schedule over 4×; a kept checkpoint at 0, 1×, 2×, 3×, 4×.
  assert (cfg.num_steps, cfg.checkpoint.every, cfg.seed) == (1560, 390, 1)
  assert cfg.checkpoint.keep >= 5 and cfg.optimizer.name == "lars"
  assert cfg.data.dataset == "hierarchical_shapes/32_small"
  assert "hierarchy" in cfg.eval.cli
  results = {"setup": {"dataset": "d", "seed": 0, "factor": 2, "set": [],
                       "base_steps": 3},
             "random_init": {budget.COLUMNS[0][1]: 0.1},
             "runs": {"byol": {"train_minutes": 1.0, "points": {
                 "1": {budget.COLUMNS[0][1]: 0.2},
                 "2": {budget.COLUMNS[0][1]: 0.3}}}}}
  table = budget.markdown(results, 2)
  assert "| byol | 0.100 | 0.200 | 0.300 |" in table
  assert "kNN" not in table  # columns without values are left out


def test_compare_methods_cells_and_tuning_choose_on_validation_only():
  names = [c[0] for c in compare_methods.cells(["mveb", "ae"], sweep=True)]
  assert names == [f"mveb/loss.lambd={v:g}" for v in
                   (0.001, 0.003, 0.01, 0.03, 0.1)] + ["ae"]
  assert compare_methods.SWEEP["byol"][1] == [0.999, 0.997, 0.99, 0.97, 0.9]
  coarse = compare_methods.cells(["simclr", "byol"], sweep=True,
                                 factors=(0.1, 1, 10))
  assert [c[0] for c in coarse] == [
      "simclr/loss.temperature=0.01", "simclr/loss.temperature=0.1",
      "simclr/loss.temperature=1", "byol/ema.base=0.999",
      "byol/ema.base=0.99", "byol/ema.base=0.9"]
  assert coarse[0][2] == {"loss.temperature": 0.01}
  sweep = {"split": "validation", "summary": {"ds": {
      "mveb/loss.lambd=0.01": {"linear": {"mean": 0.5}},
      "mveb/loss.lambd=0.1": {"linear": {"mean": 0.7}},
      "mveb/loss.lambd=0.03": {"linear": {"mean": 0.6}},
      "ae": {"linear": {"mean": 0.9}},
      "random_init:mae/model.patch_size=8": {"linear": {"mean": 0.95}}}}}
  assert compare_methods.best_values(sweep, "ds") == {
      "mveb": {"loss.lambd": 0.1}}
  with pytest.raises(ValueError, match="test set"):
    compare_methods.best_values(dict(sweep, split="test"), "ds")
  # SAG-VICReg's two-knob grid: names round-trip to settings whose types
  # the config accepts (the walk length stays an int).
  grid = compare_methods.cells(["sag_vicreg"], sweep=True)
  assert [c[0] for c in grid] == [
      "sag_vicreg/pairing.weight=0.5,pairing.steps=3",
      "sag_vicreg/pairing.weight=0.1,pairing.steps=3",
      "sag_vicreg/pairing.weight=0.5,pairing.steps=1"]
  sag = {"split": "validation", "summary": {"ds": {
      name: {"linear": {"mean": acc}} for (name, _, _), acc in
      zip(grid, (0.4, 0.3, 0.45))}}}
  tuned = compare_methods.best_values(sag, "ds")
  assert tuned == {"sag_vicreg": {"pairing.weight": 0.5, "pairing.steps": 1}}
  assert isinstance(tuned["sag_vicreg"]["pairing.steps"], int)
  assert compare_methods.cells(["sag_vicreg"], tuned=tuned) == [grid[2]]
  cfg = compare_methods.configure("sag_vicreg", "hierarchical_shapes", 0,
                                  grid[2][2], "validation")
  assert (cfg.pairing.weight, cfg.pairing.steps) == (0.5, 1)
  cfg = compare_methods.configure("byol", "mnist5k", 2, {"ema.base": 0.97},
                                  "validation")
  assert (cfg.seed, cfg.ema.base) == (2, 0.97)
  assert (cfg.data.train_split, cfg.data.eval_split) == ("train[:80%]",
                                                          "train[80%:]")


def test_compare_methods_seeds_and_validation_split(data_dir, tmp_path,
                                                    monkeypatch):
  tiny = lambda arg: helpers.tiny_config(data_dir, num_steps=2, **{
      "eval.cli": "linear,knn,ncc"})
  monkeypatch.setattr(compare_methods, "get_config", tiny)
  out = compare_methods.run_all(str(tmp_path), ["hierarchical_shapes/32_small"],
                                ["vicreg"], seeds=["0", "1"],
                                split="validation", data_dir=data_dir,
                                common={"optimizer.weight_decay": 0.0})
  ds = "hierarchical_shapes/32_small"
  assert sorted(out["runs"]) == [f"{ds}/{c}/seed{s}" for c in
                                 ("random_init", "vicreg") for s in (0, 1)]
  runs = [out["runs"][f"{ds}/vicreg/seed{s}"] for s in (0, 1)]
  # Different seeds train differently.
  assert runs[0]["rep/label/true/knn_k20"] != runs[1]["rep/label/true/knn_k20"]
  linear = [r["rep/label/true/linear_test"] for r in runs]
  cell = out["summary"][ds]["vicreg"]["linear"]
  assert cell["n"] == 2 and np.isclose(cell["mean"], np.mean(linear))
  assert np.isclose(cell["std"], np.std(linear, ddof=1))
  # Probes scored on the last 20% of train (200 images of 1,000).
  cfg = json.load(open(tmp_path / ds / "vicreg" / "seed0" / "config.json"))
  assert cfg["data"]["eval_split"] == "train[80%:]"
  assert cfg["optimizer"]["weight_decay"] == 0.0  # --set, in every cell
  written = json.load(open(tmp_path / "results.json"))
  assert written["split"] == "validation" and written["summary"] == json.loads(
      json.dumps(out["summary"]))
  assert "| vicreg | 2 |" in (tmp_path / "results.md").read_text()
  assert written["set"] == {"optimizer.weight_decay": 0.0}


def test_compare_methods_reads_each_encoder_against_its_own_init(
    data_dir, tmp_path, monkeypatch):
  tiny = lambda arg: helpers.tiny_config(data_dir, num_steps=1, **{
      "eval.cli": "linear,knn,ncc"})
  monkeypatch.setattr(compare_methods, "get_config", tiny)
  monkeypatch.setitem(compare_methods.GRIDS, "ae", (
      {"optimizer.base_lr": 1e-3}, {"model.width": 8},
      {"optimizer.base_lr": 2e-3}))
  ds = "hierarchical_shapes/32_small"
  out = compare_methods.run_all(str(tmp_path), [ds], ["ae"], sweep=True,
                                split="validation", data_dir=data_dir)
  wide = "ae/model.width=8"
  # Width 4 (two cells) is evaluated at init once, width 8 on its own.
  assert {k for k in out["runs"] if "random_init" in k} == {
      f"{ds}/random_init/seed0", f"{ds}/random_init:{wide}/seed0"}
  assert [out["runs"][f"{ds}/{c}/seed0"]["init"] for c in (
      "ae/optimizer.base_lr=0.001", wide, "ae/optimizer.base_lr=0.002")] == [
          "random_init", f"random_init:{wide}", "random_init"]
  inits = [out["runs"][f"{ds}/{n}/seed0"]["rep/label/true/linear_test"]
           for n in ("random_init", f"random_init:{wide}")]
  assert inits[0] != inits[1]
