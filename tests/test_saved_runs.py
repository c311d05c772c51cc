"""ssljax-export / ssljax-import: workdir -> safetensors -> workdir."""
import subprocess
import sys

import jax
import numpy as np
import pytest
import safetensors.numpy

from ssljax import files
from ssljax import methods
from ssljax import saved_runs
from ssljax import train
from ssljax import validate
from ssljax import weights
from tests import helpers


def _files_equal(a, b):
  x, y = safetensors.numpy.load_file(a), safetensors.numpy.load_file(b)
  assert x.keys() == y.keys()
  for k in x:
    np.testing.assert_array_equal(x[k], y[k], err_msg=k)


def test_import_then_export_is_exact_and_eval_reads_the_weights(
    data_dir, tmp_path):
  cfg = helpers.tiny_config(data_dir)
  cfg.model.width = 64  # torchvision's width
  src = weights.to_state_dict(cfg, jax.tree.map(
      lambda x: np.random.RandomState(x.size % 97).rand(*x.shape).astype(
          np.float32) + 0.5,
      jax.eval_shape(methods.init_fn(cfg, 24)[1])))
  path = str(tmp_path / "in.safetensors")
  safetensors.numpy.save_file(src, path)
  wd = str(tmp_path / "imported")
  saved_runs.import_weights(path, cfg, wd)
  with pytest.raises(ValueError, match="already holds checkpoints"):
    saved_runs.import_weights(path, cfg, wd)
  # Training on it: refused (its checkpoint was called damaged and moved).
  with pytest.raises(validate.ConfigError, match="made by ssljax-import.*"
                     "downstream.init_from"):
    train.train_and_evaluate(cfg, wd)
  assert (tmp_path / "imported" / "checkpoints" / "1").is_dir()
  assert not (tmp_path / "imported" / "checkpoints_damaged").exists()
  _, variables, _, step = saved_runs.load(wd)
  assert step == saved_runs.IMPORTED_STEP
  np.testing.assert_array_equal(
      variables["params"]["encoder"]["stem_conv"]["kernel"],
      np.transpose(src["conv1.weight"], (2, 3, 1, 0)))
  out = str(tmp_path / "out.safetensors")
  meta = saved_runs.export(wd, "torchvision", out)
  assert meta["ssljax_step"] == "1" and "resnet18" in meta["load_with"]
  assert "nn.Identity()" in meta["load_with"]  # the CIFAR stem's max-pool
  _files_equal(path, out)
  # An existing file: refused (it was overwritten), replaced with overwrite.
  with pytest.raises(files.OutputRefused, match="exists: pass --overwrite"):
    saved_runs.export(wd, "torchvision", path)
  saved_runs.export(wd, "torchvision", out, overwrite=True)
  _files_equal(path, out)
  # A non-finite weight: refused, no checkpoint written.
  bad = dict(src, **{"conv1.weight": src["conv1.weight"] * np.nan})
  safetensors.numpy.save_file(bad, str(tmp_path / "nan.safetensors"))
  with pytest.raises(FloatingPointError, match="holds weights that are not "
                     r"finite \(1: conv1.weight\).*nothing was written"):
    saved_runs.import_weights(str(tmp_path / "nan.safetensors"), cfg,
                               str(tmp_path / "nan"))
  assert not list((tmp_path / "nan" / "checkpoints").glob("[0-9]*"))
  assert not (tmp_path / "nan" / "config.json").exists()
  # A config whose model is not the file's: one clear error, nothing made.
  cfg.model.name = "resnet34"
  with pytest.raises(weights.StateDictMismatch, match="layer1.2"):
    saved_runs.import_weights(path, cfg, str(tmp_path / "bad"))
  assert not (tmp_path / "bad" / "checkpoints").exists()


def test_export_cli_refuses_what_no_torch_model_loads(tiny_workdir, tmp_path):
  out = tmp_path / "x.safetensors"
  args = [sys.executable, "-m", "ssljax.cli.export", f"--workdir={tiny_workdir}",
          f"--out={out}"]
  r = subprocess.run(args + ["--format=torchvision"], capture_output=True,
                     text=True, cwd=helpers.ROOT)
  assert r.returncode == 1 and "width 64 only" in r.stderr, r.stderr
  r = subprocess.run(args + ["--format=timm"], capture_output=True,
                     text=True, cwd=helpers.ROOT)
  assert r.returncode == 1 and "ResNets export as torchvision" in r.stderr
  assert not out.exists()


@pytest.mark.parametrize("method", ["mae", "vicreg"])
def test_vit_workdirs_round_trip_through_timm_state_dicts(method):
  cfg = helpers.load_config("compare_cpu", f"{method},hierarchical_shapes")
  if method == "vicreg":
    cfg.model = dict(name="vit_tiny", patch_size=4, image_size=32)
  shapes = jax.eval_shape(methods.init_fn(cfg, 24)[1])
  rng = np.random.RandomState(0)
  variables = jax.tree.map(
      lambda x: rng.randn(*x.shape).astype(np.float32), shapes)
  sd = weights.to_state_dict(cfg, variables, num_classes=10)
  assert sd["head.weight"].shape == (10, 192) and sd["pos_embed"].shape == (
      1, 65, 192)
  fresh = jax.tree.map(np.zeros_like, variables)
  back = weights.with_state_dict(cfg, fresh, sd)
  enc, _ = weights.encoder_of(cfg, back)
  jax.tree.map(np.testing.assert_array_equal, enc,
               weights.encoder_of(cfg, variables)[0])
  # Heads, the decoder and the probe stay as they were (here zeros).
  rest = {k: v for k, v in back["params"].items()
          if k not in enc and k != "encoder"}
  assert rest and all(not np.any(x) for x in jax.tree.leaves(rest))
