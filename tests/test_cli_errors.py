"""Bad input gets one line saying what is wrong and what to do (issue 25).

Exit codes: 2 for a bad command line (`ssljax.cli.train.parse_flags`), 1 for a
bad config, dataset or workdir. Most cases run in-process (parse_flags,
validate.check, ssljax.data.sources, ssljax.saved_runs); two go through the
real `python -m ssljax.cli.train` to check the whole path to stderr.
"""

import json
import logging
import math
import os
import shutil
import subprocess
import sys

from absl import flags
import pytest

from ssljax import checkpoint
from ssljax import saved_runs
from ssljax import validate
from ssljax.cli import train as train_cli
import ssljax.data
from ssljax.data import sources
from tests import helpers

QUICKSTART = os.path.join(helpers.ROOT, "configs", "quickstart.py")
PROG = "ssljax-train"


def _reset_flags():
  """As before a parse: config_flags defines a flag per --config.FIELD
  override at each parse, which a second parse would define twice."""
  flags.FLAGS.unparse_flags()
  for name in list(flags.FLAGS):
    if name.startswith("config."):
      delattr(flags.FLAGS, name)


@pytest.fixture(autouse=True)
def _fresh_flags():
  yield
  _reset_flags()


def _parse(capsys, *args):
  """(exit code, non-empty stderr lines) of parse_flags on `args`."""
  with pytest.raises(SystemExit) as e:
    train_cli.parse_flags([PROG, *args])
  err = capsys.readouterr().err
  return e.value.code, [l for l in err.splitlines() if l.strip()]


def _one_error(code, lines, *parts):
  assert code == 2, lines
  assert len(lines) == 1, lines
  assert lines[0].startswith(f"{PROG}: error: "), lines
  for p in parts:
    assert p in lines[0], lines


# ----------------------------------------------------------------------------
# 1. The command line: ssljax.cli.train.parse_flags. Exit 2, one line.
# ----------------------------------------------------------------------------
def test_a_bad_value_names_the_field_and_its_type(capsys, tmp_path):
  _one_error(*_parse(capsys, f"--config={QUICKSTART}",
                     f"--workdir={tmp_path / 'wd'}", "--config.batch_size=abc"),
             "--config.batch_size=abc", "takes an int (default 256)")


def test_a_bad_config_argument_shows_the_config_s_own_message(capsys,
                                                             tmp_path):
  spec = os.path.join(helpers.ROOT, "configs", "compare_cpu.py")
  _one_error(*_parse(capsys, f"--config={spec}:simclear,mnist5k",
                     f"--workdir={tmp_path / 'wd'}"),
             "the config does not load", "Bad arg 'simclear,mnist5k'",
             "simclr")


def test_a_config_path_typo_suggests_the_file(capsys, tmp_path):
  typo = os.path.join(helpers.ROOT, "configs", "quickstrat.py")
  _one_error(*_parse(capsys, f"--config={typo}",
                     f"--workdir={tmp_path / 'wd'}"),
             "no such file", "Did you mean", "configs/quickstart.py")


def test_a_missing_workdir_is_one_line(capsys):
  _one_error(*_parse(capsys, f"--config={QUICKSTART}"),
             "--workdir is required", "--workdir=/tmp/run1")


def test_tilde_in_the_config_path_is_expanded(capsys, tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path))
  shutil.copy(QUICKSTART, tmp_path / "x.py")
  train_cli.parse_flags([PROG, "--config=~/x.py:hierarchical_shapes",
                    f"--workdir={tmp_path / 'wd'}", "--config.batch_size=64"])
  assert train_cli._CONFIG.value.batch_size == 64
  assert train_cli._CONFIG.value.data.dataset == "hierarchical_shapes"
  _reset_flags()
  _one_error(*_parse(capsys, "--config=~/nothere.py", "--workdir=w"),
             f"--config={tmp_path}/nothere.py: no such file")


@pytest.mark.parametrize("field,closest", [
    ("batch_sise", "batch_size"),                  # top level
    ("optimizer.base_lrr", "optimizer.base_lr"),   # nested leaf
    ("optim.base_lr", "optimizer.base_lr"),        # misspelled parent
])
def test_did_you_mean_works_at_every_depth(capsys, tmp_path, field, closest):
  _one_error(*_parse(capsys, f"--config={QUICKSTART}",
                     f"--workdir={tmp_path / 'wd'}", f"--config.{field}=3"),
             f"--config.{field}: no such config field.",
             f"Closest valid fields: {closest}")


def test_help_lists_ssljax_s_own_flags_and_exits_0(capsys):
  with pytest.raises(SystemExit) as e:
    train_cli.parse_flags([PROG, "--help"])
  assert e.value.code == 0
  out = capsys.readouterr().out
  for name in ("--config:", "--workdir:", "override_config:", "traceback:"):
    assert name in out, out


# ----------------------------------------------------------------------------
# 2. The config: ssljax.validate.check. One line per problem.
# ----------------------------------------------------------------------------
@pytest.mark.parametrize("overrides,message", [
    ({"optimizer.base_lr": math.inf},
     "optimizer.base_lr = inf: must be a finite number"),
    ({"optimizer.weight_decay": math.nan},
     "optimizer.weight_decay = nan: must be a finite number"),
    ({"loss.sim_coeff": -math.inf}, "loss.sim_coeff = -inf: must be a finite"),
    ({"optimizer.warmup_epochs": -1.0},
     "optimizer.warmup_epochs = -1.0: must be ≥ 0"),
    ({"data.image_size": 2},
     "data.image_size = 2: the ResNet cifar stem needs ≥ 8 px"),
    ({"model.stem": "imagenet"},  # the tiny config's 16 px
     "data.image_size = 16: the ResNet imagenet stem needs ≥ 32 px"),
    ({"model.width": 0}, "model.width = 0: a network size, must be a whole "
                         "number ≥ 1"),
    ({"model": {"name": "vit_tiny", "patch_size": 4, "num_heads": 0}},
     "model.num_heads = 0: a network size"),
    ({"optimizer.momentum": 1.0},
     "optimizer.momentum = 1.0: must be in [0, 1)"),
    ({"data.seed": -1}, "data.seed = -1: must be an integer ≥ 0"),
    ({"encoder_seed": -2}, "encoder_seed = -2: must be an integer ≥ 0"),
    ({"data.interpolation": "nearest"},
     "data.interpolation = 'nearest': valid: bilinear, bicubic"),
    ({"method": "barlow_twins", "loss": {"lambd": 0.0051,
                                         "ddp_world_size": 0}},
     "loss.ddp_world_size = 0: must be an integer >= 1"),
    ({"model": {"name": "vit_tiny", "patch_size": 4, "drop_path": 0.1}},
     "model.drop_path = 0.1: stochastic depth is wired for dino, downstream "
     "only"),
    ({"model.bn_groups": 3}, "model.bn_groups = 3 does not divide "
                             "batch_size = 32"),
    ({"model.bn_groups": 0}, "model.bn_groups = 0: a number of BatchNorm "
                             "groups, must be a whole number ≥ 1"),
    ({"knn.k": (0,)}, "knn.k = (0,): neighbour counts, each a whole number"),
    ({"knn.k": ()}, "knn.k = (): neighbour counts"),
    ({"data.num_local": -1}, "data.num_local = -1: a number of local crops"),
    ({"mesh.fsdp": 3}, "mesh.fsdp = 3 does not divide the 1 devices"),
    ({"mesh.fsdp": 0}, "mesh.fsdp = 0: the devices each array is split"),
])
def test_invalid_numbers_are_refused_with_the_field(overrides, message):
  cfg = helpers.tiny_config("/nonexistent", **overrides)
  with pytest.raises(validate.ConfigError) as e:
    validate.check(cfg)
  assert message in str(e.value)
  assert "\n" not in str(e.value)  # one problem: one line


def test_a_downstream_init_from_that_is_no_workdir_is_refused(tmp_path):
  cfg = helpers.load_config("eval/linear_cpu")
  cfg.downstream.init_from = str(tmp_path / "nowhere")
  with pytest.raises(validate.ConfigError, match="downstream.init_from = .*"
                     "nowhere': not a ssljax workdir"):
    validate.check(cfg)


def test_encoder_seed_on_a_method_without_an_encoder_is_refused():
  cfg = helpers.load_config("rdae_spiral2d")
  cfg.encoder_seed = 1
  with pytest.raises(validate.ConfigError, match="encoder_seed = 1: rdae "
                     "has no encoder apart from its heads"):
    validate.check(cfg)


def test_the_shipped_configs_still_pass():
  for name, arg in (("quickstart", None), ("rdae_spiral2d", None),
                    ("vicreg_resnet50_imagenet", None),
                    ("compare_cpu", "mae,mnist5k")):
    validate.check(helpers.load_config(name, arg))


def test_width_0_on_the_command_line_exits_1_before_the_workdir(data_dir,
                                                                tmp_path):
  wd = tmp_path / "wd"
  r = subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train", *helpers.tiny_flags(data_dir),
       "--config.model.width=0", f"--workdir={wd}"],
      capture_output=True, text=True, cwd=helpers.ROOT, timeout=300)
  errors = [l for l in r.stderr.splitlines() if "error:" in l]
  assert r.returncode == 1, r.stderr[-3000:]
  assert errors == [f"ssljax-train: error: Invalid config: model.width = 0: "
                    "a network size, must be a whole number ≥ 1."], r.stderr
  assert not wd.exists()


def test_a_bad_flag_value_through_absl_s_app_exits_2_in_one_line(tmp_path):
  r = subprocess.run(
      [sys.executable, "-m", "ssljax.cli.train", f"--config={QUICKSTART}",
       f"--workdir={tmp_path / 'wd'}", "--config.batch_size=abc"],
      capture_output=True, text=True, cwd=helpers.ROOT, timeout=300)
  lines = [l for l in r.stderr.splitlines() if l.strip()]
  assert r.returncode == 2, r.stderr[-3000:]
  assert len(lines) == 1 and lines[0].startswith(
      "ssljax-train: error: --config.batch_size=abc"), lines
  assert not (tmp_path / "wd").exists()


# ----------------------------------------------------------------------------
# 3. Data: ssljax.data.sources.
# ----------------------------------------------------------------------------
def test_an_empty_split_names_dataset_split_and_sizes(data_dir):
  with pytest.raises(sources.DatasetError) as e:
    sources.load_source("hierarchical_shapes/32_small", "train[:0]", data_dir)
  msg = str(e.value)
  assert "Split 'train[:0]' of dataset 'hierarchical_shapes/32_small' " \
         "holds 0 examples" in msg
  assert "train (1000)" in msg


def test_an_unprepared_dataset_says_whether_its_folder_exists(tmp_path):
  with pytest.raises(sources.DatasetError) as e:
    sources.load_source("cifar10", "train", str(tmp_path))
  assert "no folder" in str(e.value) and "never built" in str(e.value)
  assert "exists" not in str(e.value)
  assert (f"tfds build cifar10 --data_dir={tmp_path} "
          "--file_format=array_record") in str(e.value)
  with pytest.raises(sources.DatasetError) as e:  # shipped, not built
    sources.load_source("mnist5k", "train", str(tmp_path), download=False)
  assert "no folder" in str(e.value)
  (tmp_path / "cifar10" / "3.0.2").mkdir(parents=True)
  with pytest.raises(sources.DatasetError) as e:
    sources.load_source("cifar10", "train", str(tmp_path))
  assert "exists but holds no dataset_info.json" in str(e.value)
  assert "tfds build cifar10" in str(e.value)


def test_check_keys_lists_the_valid_keys(shapes_train):
  sources.check_keys(shapes_train, ["label", "coarse_label"],
                     dataset="hierarchical_shapes/32_small", split="train")
  with pytest.raises(ssljax.data.DatasetError) as e:
    ssljax.data.check_keys(
        shapes_train, {"data.label_key": "nolabel",
                       "eval.coarse_label_keys": ("coarse_label", "coarse")},
        dataset="hierarchical_shapes/32_small", split="train")
  assert str(e.value) == (
      "Dataset 'hierarchical_shapes/32_small' split 'train' has no key(s) "
      "nolabel (data.label_key), coarse (eval.coarse_label_keys); its keys: "
      "coarse_label, image, label, super_label. Use one of them.")
  with pytest.raises(sources.DatasetError, match="no key.s. x; its keys"):
    sources.check_keys(sources.InMemory(shapes_train), ["x"],
                       dataset="hierarchical_shapes/32_small", split="train")


# ----------------------------------------------------------------------------
# 4. ssljax-eval: ssljax.saved_runs.evaluate.
# ----------------------------------------------------------------------------
@pytest.fixture
def workdir_copy(tiny_workdir, tmp_path):
  wd = tmp_path / "run"
  shutil.copytree(tiny_workdir, wd)
  return wd


def test_hierarchy_without_coarse_levels_is_refused(workdir_copy):
  cfg = json.loads((workdir_copy / "config.json").read_text())
  cfg["eval"]["coarse_label_keys"] = []
  (workdir_copy / "config.json").write_text(json.dumps(cfg))
  with pytest.raises(ValueError, match=r"eval\.coarse_label_keys = \(\)"):
    saved_runs.evaluate(str(workdir_copy), names="knn,hierarchy")


def test_results_of_earlier_calls_are_kept(workdir_copy):
  path = workdir_copy / "checkpoints" / "eval_step4.json"
  before = json.loads(path.read_text())  # the fixture ran knn,ncc
  assert before["evals"] == ["knn", "ncc"]
  results, _ = saved_runs.evaluate(str(workdir_copy), names="cdnv,ncc")
  after = json.loads(path.read_text())
  assert after["evals"] == ["knn", "ncc", "cdnv"]
  assert after["step"] == 4
  for k, v in before["results"].items():
    if "/ncc_" not in k:
      assert after["results"][k] == v  # kept
  for k, v in results.items():
    assert after["results"][k] == v  # recomputed ones replace the old
  assert any("/cdnv_test" in k for k in after["results"])


def test_a_checkpoint_rotated_away_before_restore_falls_back(
    workdir_copy, monkeypatch):
  restore = checkpoint.restore_variables
  chosen = []

  def rotated(mngr, step, like):  # a running training deletes it now
    chosen.append(step)
    if len(chosen) == 1:
      shutil.rmtree(workdir_copy / "checkpoints" / str(step))
    return restore(mngr, step, like)

  monkeypatch.setattr(checkpoint, "restore_variables", rotated)
  _, _, _, step = saved_runs.load(str(workdir_copy))
  assert chosen == [4, 2] and step == 2


def test_loading_a_checkpoint_logs_no_orbax_warnings(workdir_copy, caplog):
  with caplog.at_level(logging.WARNING):
    saved_runs.load(str(workdir_copy))
  noise = [r.getMessage() for r in caplog.records
           if "read_only" in r.getMessage() or "read only" in r.getMessage()]
  assert not noise, noise
