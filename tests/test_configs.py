"""Every config loads, names valid components and builds its model."""
import glob
import os
import shutil
import subprocess
import sys

import jax
import pytest

from ssljax import train_state
from tests import helpers

CONFIGS = sorted(os.path.relpath(p, os.path.join(helpers.ROOT, "configs"))[:-3]
                 for p in glob.glob(os.path.join(helpers.ROOT, "configs", "*.py"))
                 + glob.glob(os.path.join(helpers.ROOT, "configs", "eval",
                                          "*.py")))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_builds(name):
  cfg = helpers.load_config(name)
  doc = open(os.path.join(helpers.ROOT, "configs", f"{name}.py")).read()
  assert f"--config=configs/{name}.py" in doc, "docstring must give the command"
  s = train_state.setup(cfg, num_examples=100_000, num_classes=10)
  assert s.total_steps > 0
  shapes = jax.eval_shape(lambda: train_state.init_state(s, 0))
  assert jax.tree.leaves(shapes.params)


@pytest.mark.parametrize("method", ["mveb", "vicreg", "sag_vicreg", "byol",
                                    "simclr", "barlow_twins", "nnclr", "swav",
                                    "dino", "ae", "mae"])
def test_compare_cpu_builds_every_method(method):
  cfg = helpers.load_config("compare_cpu", f"{method},mnist5k")
  s = train_state.setup(cfg, num_examples=4000, num_classes=10)
  shapes = jax.eval_shape(lambda: train_state.init_state(s, 0))
  width = 192 if method == "mae" else 64
  assert shapes.params["probe"]["kernel"].shape == (width, 10)
  # only the method's own fields: no other method's defaults leak in
  assert ("ema" in cfg) == (method in ("mveb", "byol", "sag_vicreg", "dino"))
  assert ("pairing" in cfg) == (method == "sag_vicreg")
  assert ("decoder" in cfg) == (method == "ae")


def test_a_config_copied_anywhere_runs_unchanged(tmp_path):
  fork = tmp_path / "my_ablation.py"
  shutil.copy(os.path.join(helpers.ROOT, "configs", "quickstart.py"), fork)
  # As config_flags loads --config files: by path, outside the repo.
  code = ("import importlib.util as u; "
          f"s = u.spec_from_file_location('cfg', {str(fork)!r}); "
          "m = u.module_from_spec(s); s.loader.exec_module(m); "
          "c = m.get_config(); assert c.method == 'vicreg', c.method")
  subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path,
                 timeout=300)


def test_quickstart_is_the_readme_command():
  readme = open(os.path.join(helpers.ROOT, "README.md")).read()
  assert "ssljax-train --config=configs/quickstart.py" in readme
  ci = open(os.path.join(helpers.ROOT, ".ci", "run")).read()
  test_cmd = 'pip install -e ".[test]" && python -m pytest -n auto -q tests'
  assert test_cmd in readme and test_cmd in ci


def test_sag_vicreg_imagenet_is_the_vicreg_recipe_plus_pairing():
  """The SAG-VICReg recipe promises VICReg's; a field changed in one
  ImageNet config and not the other fails here."""
  sag = helpers.load_config("sag_vicreg_resnet50_imagenet").to_dict()
  vic = helpers.load_config("vicreg_resnet50_imagenet").to_dict()
  for c in (sag, vic):
    for k in ("method", "pairing", "ema"):
      c.pop(k, None)
  assert sag == vic
