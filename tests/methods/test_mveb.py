"""MVEB's λ rescaling to a reference (n, d) balance (loss.lambd_reference)."""

import ml_collections
import numpy as np
import pytest

from ssljax import configs
from ssljax import validate
from ssljax.methods import mveb


def _cfg(reference, batch=64, projector="32-32-16", scope="per_device"):
  c = ml_collections.ConfigDict(dict(
      batch_size=batch, projector=projector,
      loss=dict(mveb.default_config().loss)))
  c.loss.lambd_reference = reference
  c.loss.score_scope = scope
  return c


def test_off_by_default_and_identity_at_the_reference():
  assert mveb.default_config().loss.lambd_reference == ""
  assert mveb.effective_lambd(_cfg(""), 1) == 0.01
  # Reference = this run's own (n, d): the same draws, so exactly λ.
  assert mveb.effective_lambd(_cfg("64,16"), 1) == pytest.approx(0.01,
                                                                 rel=1e-6)
  # n is the per-device batch: 64 over 4 devices is an estimate of 16.
  assert mveb.effective_lambd(_cfg("16,16"), 4) == pytest.approx(0.01,
                                                                 rel=1e-6)
  assert mveb.effective_lambd(_cfg("64,16", scope="global"), 4) == (
      pytest.approx(0.01, rel=1e-6))


def test_more_samples_per_estimate_push_harder_so_lambda_shrinks():
  """‖ŝ⊥‖ grows with n: a run with 4× the reference's samples gets a
  smaller λ, one with fewer a larger λ; the factor is the ratio of the
  measured pushes."""
  small = mveb.uniform_push(16, 16)
  large = mveb.uniform_push(64, 16)
  assert large > 1.5 * small
  lam = mveb.effective_lambd(_cfg("16,16"), 1)  # n = 64 here
  np.testing.assert_allclose(lam, 0.01 * small / large, rtol=1e-6)
  assert mveb.effective_lambd(_cfg("256,16"), 1) > 0.01


def test_a_bad_reference_is_refused_by_validation():
  for bad in ("128", "a,b", "1,2048", "128,2048,3"):
    with pytest.raises(ValueError, match="lambd_reference"):
      mveb.parse_reference(bad)
  c = configs.base_config("mveb")
  c.loss.lambd_reference = "128"
  with pytest.raises(validate.ConfigError, match="lambd_reference"):
    validate.check(c, num_devices=1, num_processes=1)


def test_the_cpu_comparison_setting_against_the_papers():
  """n = 256 of d = 512 (configs/compare_cpu.py, one device) against the
  paper's 128 of 2048: the uniform push is ≈ 4.1× the paper's
  (docs/results/compare_methods.md), so λ = 0.01 becomes ≈ 0.0024."""
  c = _cfg("128,2048", batch=256, projector="512-512-512")
  assert 0.0022 < mveb.effective_lambd(c, 1) < 0.0027
