"""Reliability, round 3: the commands around training (eval, export,
import, downstream) as safe as training itself. Each test is an attack
that gave a wrong result or lost data before."""

import json
import os
import shutil
import signal
import subprocess
import sys

import jax
import numpy as np
import pytest
import safetensors.numpy

from ssljax import checkpoint
from ssljax import files
from ssljax import methods
from ssljax import monitor
from ssljax import preemption
from ssljax import results
from ssljax import saved_runs
from ssljax import torch_files
from ssljax import train
from ssljax import weights
from tests import helpers


def _edited_copy(tiny_workdir, tmp_path, name, edit):
  wd = tmp_path / name
  shutil.copytree(tiny_workdir, wd)
  cfg = json.loads((wd / "config.json").read_text())
  edit(cfg)
  (wd / "config.json").write_text(json.dumps(cfg))
  return wd


@pytest.mark.parametrize("name,edit,message", [
    ("deeper", lambda c: c["model"].update(name="resnet34"),
     "80 arrays the config needs are absent"),
    ("shorter_head", lambda c: c.update(projector="32"),
     "arrays the config has no place for"),
    ("wider", lambda c: c["model"].update(width=8),
     r"differ in shape or dtype \(e.g. .*: \(4,\) float32 saved, \(8,\)"),
])
def test_a_checkpoint_loads_only_into_the_network_it_was_trained_as(
    tiny_workdir, tmp_path, name, edit, message):
  """config.json edited after training: the restore took any subset of the
  checkpoint (a resnet34 evaluated and exported as a resnet18, its extra
  blocks dropped) and crashed with a TypeError on a superset."""
  wd = _edited_copy(tiny_workdir, tmp_path, name, edit)
  before = (wd / "checkpoints" / "eval_step4.json").read_text()
  with pytest.raises(checkpoint.NetworkMismatch, match=message):
    saved_runs.read_variables(str(wd))
  with pytest.raises(checkpoint.NetworkMismatch, match="put back the config"):
    saved_runs.evaluate(str(wd), names="knn")
  assert (wd / "checkpoints" / "eval_step4.json").read_text() == before


def test_a_failed_override_resume_keeps_the_config_json(tiny_workdir,
                                                          tmp_path):
  """--override_config with a network the checkpoint cannot fill: config.json
  was rewritten before the restore failed, and the original command was
  then refused with a false mismatch."""
  wd = tmp_path / "run"
  shutil.copytree(tiny_workdir, wd)
  before = (wd / "config.json").read_text()
  cfg = checkpoint.load_config(str(wd))
  wider = cfg.copy_and_resolve_references()
  wider.model.width = 8
  with pytest.raises(checkpoint.NetworkMismatch,
                     match="--override_config may change how a run trains"):
    train.train_and_evaluate(wider, str(wd), override_config=True)
  assert (wd / "config.json").read_text() == before
  assert sorted(p.name for p in (wd / "checkpoints").iterdir()
                if p.name.isdigit()) == ["2", "4"]
  state = train.train_and_evaluate(cfg, str(wd))  # not refused
  assert int(state.step) == 4


@pytest.mark.parametrize("target", [
    "config.json", "metrics.jsonl", "checkpoints/eval_step4.json",
    "checkpoints/4/state/_METADATA"])
def test_export_never_replaces_a_workdirs_own_files(tiny_workdir, tmp_path,
                                                    target):
  """--out=<workdir>/config.json was overwritten (with --overwrite too it
  must not be): every command then failed with a utf-8 decode error."""
  wd = tmp_path / "run"
  shutil.copytree(tiny_workdir, wd)
  before = (wd / target).read_bytes()
  for overwrite in (False, True):
    with pytest.raises(files.OutputRefused, match="workdir .*'s own files"):
      saved_runs.export(str(wd), "torchvision", str(wd / target),
                        overwrite=overwrite)
  assert (wd / target).read_bytes() == before


def test_export_to_a_folder_is_refused_and_leaves_nothing(tiny_workdir,
                                                          tmp_path):
  """--out=<existing folder>: IsADirectoryError, a .tmp file left behind."""
  with pytest.raises(files.OutputRefused, match="is a folder: give a file"):
    saved_runs.export(tiny_workdir, "torchvision", str(tmp_path))
  assert not list(tmp_path.iterdir())
  with pytest.raises(ValueError, match="--num_classes=-5: the classifier"):
    saved_runs.export(tiny_workdir, "torchvision", str(tmp_path / "x"),
                      num_classes=-5)


def _signal_first(fn):
  """`fn`, after a SIGTERM to this process (as if it came mid-command)."""
  def wrapped(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    return fn(*args, **kwargs)
  return wrapped


@pytest.fixture
def clean_signals():
  yield
  preemption._received.clear()  # pylint: disable=protected-access


def test_sigterm_stops_ssljax_eval_and_writes_nothing(
    tiny_workdir, tmp_path, monkeypatch, clean_signals):
  """The first SIGTERM was logged, then ignored: the evaluation ran to the
  end and exited 0."""
  del clean_signals
  wd = tmp_path / "run"
  shutil.copytree(tiny_workdir, wd)
  before = (wd / "checkpoints" / "eval_step4.json").read_text()
  monkeypatch.setattr(monitor, "extract", _signal_first(monitor.extract))
  with pytest.raises(preemption.Preempted,
                     match="SIGTERM during the evaluation: ssljax-eval wrote "
                     "nothing"):
    saved_runs.evaluate(str(wd), names="knn")
  assert (wd / "checkpoints" / "eval_step4.json").read_text() == before


def _importable(data_dir, tmp_path):
  cfg = helpers.tiny_config(data_dir)
  cfg.model.width = 64  # torchvision's
  sd = weights.to_state_dict(cfg, jax.tree.map(
      lambda x: np.full(x.shape, 0.5, np.float32),
      jax.eval_shape(methods.init_fn(cfg, 24)[1])))
  path = str(tmp_path / "in.safetensors")
  safetensors.numpy.save_file(sd, path)
  return cfg, path


def test_sigterm_stops_export_and_import_and_they_write_nothing(
    data_dir, tmp_path, monkeypatch, clean_signals):
  del clean_signals
  cfg, path = _importable(data_dir, tmp_path)
  with monkeypatch.context() as m:
    m.setattr(weights, "with_state_dict",
              _signal_first(weights.with_state_dict))
    with pytest.raises(preemption.Preempted, match="ssljax-import wrote "
                       "nothing"):
      saved_runs.import_weights(path, cfg, str(tmp_path / "imported"))
  assert not (tmp_path / "imported" / "config.json").exists()
  assert not list((tmp_path / "imported").glob("checkpoints/[0-9]*"))
  preemption._received.clear()  # pylint: disable=protected-access
  wd = str(tmp_path / "imported")
  saved_runs.import_weights(path, cfg, wd)
  out = tmp_path / "out.safetensors"
  monkeypatch.setattr(weights, "to_state_dict",
                      _signal_first(weights.to_state_dict))
  with pytest.raises(preemption.Preempted, match="ssljax-export wrote "
                     "nothing"):
    saved_runs.export(wd, "torchvision", str(out))
  assert not out.exists() and not list(tmp_path.glob("*.tmp"))


def test_vit_exports_carry_their_heads_and_import_checks_them(data_dir,
                                                               tmp_path):
  """A 3-head ViT's file imported into a 6-head config (the same shapes)
  loaded silently with the attention split wrong: import never read the
  metadata export writes, which held no head count."""
  cfg = helpers.tiny_config(data_dir)
  cfg.model = dict(name="vit_tiny", patch_size=4, image_size=16, width=24,
                   depth=2, num_heads=3)
  variables = jax.tree.map(lambda x: np.full(x.shape, 0.25, np.float32),
                           jax.eval_shape(methods.init_fn(cfg, 24)[1]))
  arch = torch_files.architecture(cfg)
  assert arch == {"name": "vit_tiny", "width": 24, "depth": 2,
                  "num_heads": 3, "mlp_ratio": 4, "patch_size": 4,
                  "image_size": 16, "pool": "cls"}
  path = str(tmp_path / "vit.safetensors")
  safetensors.numpy.save_file(
      weights.to_state_dict(cfg, variables, 0), path,
      metadata={"ssljax_architecture": json.dumps(arch)})
  six = cfg.copy_and_resolve_references()
  six.model.num_heads = 6
  with pytest.raises(ValueError, match="model.num_heads: 3 in the file, 6 "
                     "in the config.*--config.model.num_heads=3"):
    saved_runs.import_weights(path, six, str(tmp_path / "six"))
  assert not (tmp_path / "six").exists()
  saved_runs.import_weights(path, cfg, str(tmp_path / "three"))  # fits


@pytest.mark.parametrize("config", ["mae_vit_large_imagenet",
                                    "ijepa_vit_huge_imagenet"])
def test_the_vit_l_and_h_recipes_have_a_loader_hint(config):
  """KeyError 'vit_large' after the whole restore: they could not export."""
  cfg = helpers.load_config(config)
  hint = torch_files.loader_hint(cfg, "timm", 0)
  arch = torch_files.architecture(cfg)
  for k, name in (("width", "embed_dim"), ("depth", "depth"),
                  ("num_heads", "num_heads"), ("patch_size", "patch_size")):
    assert f"{name}={arch[k]}," in hint


def _truncate_arrays(step_dir):
  """Every array data file emptied (cut to half, a file may hold only
  arrays a variables-only restore does not read)."""
  for root, _, names in os.walk(step_dir / "state"):
    if "ocdbt.process" in root and os.path.basename(root) == "d":
      for name in names:
        path = os.path.join(root, name)
        with open(path, "r+b") as f:
          f.truncate(0)


def test_a_damaged_newest_checkpoint_is_skipped_by_eval_and_export(
    tiny_workdir, tmp_path, caplog):
  """ssljax-eval and -export printed 160 lines of orbax / tensorstore
  traceback, with no fallback and no hint of --step."""
  wd = tmp_path / "run"
  shutil.copytree(tiny_workdir, wd)
  _truncate_arrays(wd / "checkpoints" / "4")
  _, variables, step = saved_runs.read_variables(str(wd))
  assert step == 2
  _, want, _ = saved_runs.read_variables(str(tiny_workdir), 2)
  jax.tree.map(np.testing.assert_array_equal, jax.device_get(variables),
               jax.device_get(want))
  assert "Checkpoint 4 in" in caplog.text and "Using checkpoint 2" in (
      caplog.text)
  _, path = saved_runs.evaluate(str(wd), names="knn")
  assert path.endswith("eval_step2.json")
  with pytest.raises(checkpoint.DamagedCheckpoints,
                     match=r"step 4: .*Other "
                     r"checkpoints: 2 \(--step=N\)\. Nothing was changed"):
    saved_runs.read_variables(str(wd), 4)
  assert (wd / "checkpoints" / "4").is_dir()  # readers move nothing


def test_import_reads_any_safetensors_and_refuses_the_rest_in_one_line(
    data_dir, tmp_path):
  """A bfloat16 file (KeyError 'BF16'), DDP's "module." keys (a good
  message inside a traceback), a .pth pickle or an empty file
  (SafetensorError tracebacks)."""
  cfg, path = _importable(data_dir, tmp_path)
  sd = safetensors.numpy.load_file(path)
  # bfloat16 and DDP-prefixed: read exactly (0.5 is a bfloat16 value).
  import ml_dtypes  # pylint: disable=g-import-not-at-top
  bf16 = {f"module.{k}": v.astype(ml_dtypes.bfloat16) if v.dtype ==
          np.float32 else v for k, v in sd.items()}
  raw = safetensors.numpy.save(bf16)
  got = torch_files.read_state_dict(raw)
  assert set(got) == set(sd)
  for k, v in sd.items():
    np.testing.assert_array_equal(got[k].astype(v.dtype), v)
  (tmp_path / "bf16.safetensors").write_bytes(raw)
  saved_runs.import_weights(str(tmp_path / "bf16.safetensors"), cfg,
                            str(tmp_path / "from_bf16"))
  for name, data, message in (
      ("empty.safetensors", b"", "not a safetensors file \\(0 bytes\\)"),
      ("model.pth", b"PK\x03\x04" + bytes(200), "not a safetensors file"),
      ("cut.safetensors", raw[:len(raw) // 2], "cut short"),
  ):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(ValueError, match=message):
      saved_runs.import_weights(str(tmp_path / name), cfg,
                                str(tmp_path / f"w_{name}"))
    assert not (tmp_path / f"w_{name}").exists()
  missing = {k: v for k, v in sd.items() if not k.startswith("layer1.1.")}
  safetensors.numpy.save_file(missing, str(tmp_path / "missing.safetensors"))
  with pytest.raises(weights.StateDictMismatch, match="layer1.1"):
    saved_runs.import_weights(str(tmp_path / "missing.safetensors"), cfg,
                              str(tmp_path / "w_missing"))


def _command(module, *args):
  r = subprocess.run([sys.executable, "-m", f"ssljax.cli.{module}", *args],
                     capture_output=True, text=True, cwd=helpers.ROOT)
  return r.returncode, r.stdout, [l for l in r.stderr.splitlines()
                                  if l.strip()]


def test_eval_export_and_import_parse_their_command_line_as_train_does(
    tiny_workdir, tmp_path):
  """--help printed only a usage line; their errors pointed to --traceback,
  an unknown flag there; import turned a misspelled --config field into a
  raw KeyError traceback, a --workdir that is a file into
  FileExistsError, and printed 61 lines of library INFO logs."""
  for module, first, flag in (("eval", "`ssljax-eval`", "--evals"),
                              ("export", "`ssljax-export`", "--[no]overwrite"),
                              ("import_", "`ssljax-import`", "--in")):
    code, out, _ = _command(module, "--help")
    assert code == 0 and out.startswith(first) and flag in out, out
  code, _, err = _command("import_", "--in=x.safetensors",
                          "--config=configs/quickstart.py",
                          "--config.modle.width=4", f"--workdir={tmp_path}")
  assert code == 2 and len(err) == 1, err
  assert "--config.modle.width: no such config field. Closest valid " \
         "fields: model.width" in err[0]
  afile = tmp_path / "afile"
  afile.write_text("x")
  cfg, path = "configs/quickstart.py", tmp_path / "in.safetensors"
  safetensors.numpy.save_file({"a": np.zeros(2, np.float32)}, str(path))
  code, _, err = _command("import_", f"--in={path}", f"--config={cfg}",
                          f"--workdir={afile}")
  assert code == 1 and err[0].endswith("is a file, not a folder; pass a "
                                       "folder path (it is created if "
                                       "missing).") and len(err) == 2, err
  code, _, err = _command("import_", f"--in={path}", f"--config={cfg}",
                          f"--workdir={tmp_path / 'new'}", "--traceback")
  assert code == 1 and err[-1].startswith("ssljax.weights.StateDictMismatch")
  code, _, err = _command("export", f"--workdir={tiny_workdir}",
                          "--format=torchvision", f"--out={tmp_path / 'x'}")
  assert code == 1 and len(err) == 2 and "width 64 only" in err[0], err


def test_a_workdir_without_an_encoder_is_refused_by_export_in_one_line(
    data_dir, tmp_path):
  """rdae (an MLP auto-encoder): KeyError 'encoder' after the restore."""
  cfg = helpers.load_config("rdae_mnist")
  cfg.data.data_dir = data_dir
  cfg.update(dict(num_steps=2, batch_size=32, progress=False,
                  summary_eval=False, log_every=1))
  cfg.checkpoint.every = 2
  wd = str(tmp_path / "rdae")
  train.train_and_evaluate(cfg, wd)
  with pytest.raises(ValueError, match="A rdae run has no ResNet or ViT "
                     "encoder to export"):
    saved_runs.export(wd, "torchvision", str(tmp_path / "x.safetensors"))
  assert not (tmp_path / "x.safetensors").exists()


def test_experiment_results_keep_every_writers_cells(tmp_path):
  """Two invocations in one workdir with different --methods each rewrote
  results.json from what they read at start: the last dropped the other's
  cells."""
  path = tmp_path / "results.json"
  a = {"setup": {"seed": 0}, "runs": {"vicreg": {"points": {"1": 0.5}}}}
  b = {"setup": {"seed": 0}, "runs": {"byol": {"points": {"1": 0.4}}}}
  files.merge_json(path, a)  # each from its own start state, {}
  files.merge_json(path, b)
  a["runs"]["vicreg"]["points"]["2"] = 0.6  # a goes on, unaware of b
  got = files.merge_json(path, a)
  assert got == json.loads(path.read_text()) == {
      "setup": {"seed": 0},
      "runs": {"vicreg": {"points": {"1": 0.5, "2": 0.6}},
               "byol": {"points": {"1": 0.4}}}}
  assert not list(tmp_path.glob("*.tmp"))


def test_train_minutes_count_every_process_of_a_resumed_run(tmp_path):
  """A 6-minute run resumed near its end was recorded as 0.3 minutes: the
  wall time of the last process only."""
  rows = [{"step": 2, "seconds_per_step": 30.0},  # the first process
          {"step": 4, "seconds_per_step": 60.0},
          {"step": 5, "seconds_per_step": 6.0, "loss": 1.0},  # resumed
          {"step": 5, "final/knn_accuracy": 0.5}]
  (tmp_path / "metrics.jsonl").write_text(
      "\n".join(json.dumps(r) for r in rows) + "\n")
  assert results.train_minutes(str(tmp_path)) == pytest.approx(
      (2 * 30 + 2 * 60 + 6) / 60)
