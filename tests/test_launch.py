"""launch/ experiment scripts, shrunk to a few steps."""
import importlib.util
import json
import os

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
  assert out["levels"] == ["label", "coarse_label"]
  for r in out["results"]:
    for layer in ("stem", "stage2", "stage4", "rep"):
      for lv in ("label", "coarse_label"):
        for kind in ("true", "random"):
          assert 0 <= r[f"{layer}/{lv}/{kind}/ncc_train"] <= 1
          assert np.isfinite(r[f"{layer}/{lv}/{kind}/cdnv_train"])
  for p in pngs:
    assert os.path.getsize(p) > 10_000 and p.endswith(".png")
  assert sorted(os.listdir(os.path.dirname(path))) == [
      "by_layer.png", "cdnv_vs_epoch.png", "ncc_vs_epoch.png", "results.json"]
