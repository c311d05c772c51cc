"""benchmarks/accelerator.py: its CPU smoke version runs end to end (the
MAE row: every row runs the same code, and its ViT compiles fastest)."""

import json
import os
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_accelerator_benchmark_tiny(data_dir, tmp_path):
  out = tmp_path / "rows.json"
  env = dict(os.environ)  # one device, as one accelerator
  env["XLA_FLAGS"] = env.get("XLA_FLAGS", "").replace(
      "--xla_force_host_platform_device_count=8", "")
  proc = subprocess.run(
      [sys.executable, os.path.join(ROOT, "benchmarks", "accelerator.py"),
       "--tiny", "--rows=mae", f"--data_dir={data_dir}",
       f"--out={out}", "--pipeline_seconds=1"],
      capture_output=True, text=True, timeout=900, check=False, env=env)
  assert proc.returncode == 0, proc.stderr[-3000:]
  rows = json.loads(out.read_text())
  assert [r["row"] for r in rows] == ["mae"]
  for r in rows:
    assert r["batch_per_device"] == 8 and r["devices"] == 1
    assert np.isfinite(r["loss"]) and r["step_ms"] > 0
    # rates() is what the train loop logs: examples/s = batch / step time.
    np.testing.assert_allclose(
        r["examples_per_sec_per_device"], 8e3 / r["step_ms"], rtol=1e-6)
    assert r["gflops_per_example"] > 0
    assert "mfu" not in r  # a CPU is not in the peak table: no guess
    np.testing.assert_allclose(
        r["headroom"], r["host_examples_per_sec"]
        / (r["devices"] * r["examples_per_sec_per_device"]), rtol=1e-6)
  assert "mae" in proc.stdout and "headroom" in proc.stdout
