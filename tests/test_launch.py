"""launch/ experiment scripts, shrunk to a few steps."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np

from tests import helpers


def _load_script(name):
  path = os.path.join(helpers.ROOT, "launch", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"launch_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_reverse_ssl_writes_results_and_plots(data_dir, tmp_path):
  script = _load_script("reverse_ssl")
  cfg = helpers.load_config("reverse_ssl")
  small = helpers.tiny_config(data_dir)
  cfg.model, cfg.projector, cfg.data = small.model, small.projector, small.data
  cfg.batch_size, cfg.eval_batch_size = 32, 200
  cfg.num_steps, cfg.checkpoint.every, cfg.progress = 2, 2, False
  path, pngs = script.run_experiment(cfg, str(tmp_path))
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
  # A subprocess: both scripts define absl flags such as --workdir.
  subprocess.run([
      sys.executable,
      os.path.join(helpers.ROOT, "launch", "learning_by_reconstruction.py"),
      f"--workdir={tmp_path}", f"--data_dir={data_dir}",
      "--datasets=hierarchical_shapes/32_small", "--ps=0.5",
      "--cnn_epochs=1", "--num_align=64", "--align_k=8", "--runs=ae",
      "--train_steps=2", "--batch_size=32", "--num_points=2"], check=True)
  res = json.load(open(tmp_path / "results.json"))["hierarchical_shapes/32_small"]
  pca = res["pca"]
  assert set(pca) == {"full", "top", "bottom", "dims"}
  assert 0 < pca["dims"]["0.5"] < 32 * 32 * 3
  assert all(0 <= pca[s]["0.5"] <= 1 for s in ("top", "bottom"))
  for curve in res["alignment"].values():
    assert len(curve) == 8 and all(np.diff(curve) >= -1e-3)
    assert 0 < curve[-1] <= 100 + 1e-3
  curve = res["training"]["ae"]["curve"]
  assert [p["step"] for p in curve] == [0, 1, 2]
  assert all(p["recon_loss"] > 0 for p in curve[1:])
  pngs = {p for p in os.listdir(tmp_path) if p.endswith(".png")}
  assert pngs == {f"hierarchical_shapes/32_small_{k}.png".replace("/", "_")
                  for k in ("pca", "alignment", "training")}
