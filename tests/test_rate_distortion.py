"""ssljax.experiments.rate_distortion, shrunk to a few steps on slices of
the data."""
import os

import numpy as np

from ssljax.experiments import rate_distortion


def _tiny_rdae(cfg):
  cfg.rdae.widths = "16"
  cfg.batch_size, cfg.num_steps, cfg.log_every = 32, 3, 1
  cfg.checkpoint.every = 3
  if cfg.data.cluster.num_clusters:  # the shuffled variants stay shuffled
    cfg.data.cluster.num_clusters = 4
  cfg.data.num_threads = 2
  cfg.data.train_split, cfg.data.eval_split = "train[:320]", "test[:200]"


def test_rate_distortion_writes_results_and_plots(data_dir, tmp_path):
  toy, pngs = rate_distortion.run_toy(str(tmp_path), data_dir=data_dir,
                                      dae_noise=("0.1",), curve_points=50,
                                      tweak=_tiny_rdae)
  assert set(toy) == {"rdae", "rdae_shuffled", "ae", "dae0.1"}
  for r in toy.values():
    assert r["energy_on_curve"] > 0
    for delta in (0.05, 0.1, 0.2):
      assert np.isfinite(r[f"depth_at_{delta:g}"])
      np.testing.assert_allclose(
          r[f"contrast_at_{delta:g}"],
          r[f"energy_at_{delta:g}"] / r["energy_on_curve"], rtol=1e-6)
  mnist, more = rate_distortion.run_mnist(str(tmp_path), data_dir=data_dir,
                                          lambdas=("0.01",), tweak=_tiny_rdae)
  assert set(mnist) == {"lam0.01", "ae"}
  assert mnist["lam0.01"]["lagrange"] == 0.01
  assert mnist["ae"]["lagrange"] is None
  for r in mnist.values():
    assert 0 <= r["test_rate_bits"] <= np.log2(200) + 1e-3
    assert r["test_distortion"] > 0
    assert 0 <= r["linear_probe"] <= 1 and 0 <= r["knn_k20"] <= 1
  names = sorted(os.path.basename(p) for p in pngs + more)
  assert names == ["energy_landscape.png", "energy_profile.png",
                   "rate_distortion.png", "reconstructions.png"]
  for p in pngs + more:
    assert os.path.getsize(p) > 10_000
