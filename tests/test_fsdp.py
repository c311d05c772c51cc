"""FSDP: parameters, optimizer and method state split along "fsdp" of a
"data" × "fsdp" mesh; the step computes what one device computes."""
import jax
import numpy as np
import pytest

from ssljax import perf
from ssljax import saved_runs
from ssljax import train
from ssljax import train_state
from ssljax import train_step
from ssljax.data import pipeline
from tests import helpers
from tests.test_train import _assert_trees_close
from tests.test_train import _batch
from tests.test_train import _method_config


def _one_step(cfg, batch, mesh):
  s = train_state.setup(cfg, 1000, 20, mesh=mesh)
  state = train_state.init_state(s, 0)
  new, metrics = train_step.jit_train_step(s)(state, pipeline.to_global(batch,
                                                                   mesh))
  return state, jax.device_get((new.params, new.batch_stats,
                                new.method_state, metrics))


@pytest.mark.parametrize("method", ["vicreg", "mveb", "mae"])
def test_data2_fsdp4_equals_one_device(data_dir, method, monkeypatch):
  # The tiny networks' arrays are small: split every one of >= 256 entries.
  monkeypatch.setattr(train_state, "FSDP_MIN_SIZE", 256)
  cfg = _method_config(data_dir, method)
  if method == "mveb":
    cfg.loss.score_scope = "global"
  batch = _batch(cfg, data_dir)
  _, one = _one_step(cfg, batch, train_state.make_mesh(jax.devices()[:1]))
  state, fsdp = _one_step(cfg, batch, train_state.make_mesh(jax.devices()[:8],
                                                      fsdp=4))
  specs = [x.sharding.spec for x in jax.tree.leaves(state.params)]
  assert any("fsdp" in s for s in specs)  # something really is split
  np.testing.assert_allclose(one[3]["loss"], fsdp[3]["loss"], rtol=1e-5)
  _assert_trees_close(one[0], fsdp[0], rtol=1e-5, atol=2e-6)
  _assert_trees_close(one[1], fsdp[1], rtol=1e-5, atol=1e-6)
  _assert_trees_close(one[2], fsdp[2], rtol=1e-5, atol=2e-6)


def test_sharding_rule():
  mesh = train_state.make_mesh(jax.devices()[:8], fsdp=4)
  spec = lambda shape: train_state.leaf_sharding(
      mesh, jax.ShapeDtypeStruct(shape, np.float32)).spec
  assert spec((3, 3, 64, 256)) == jax.sharding.PartitionSpec(
      None, None, None, "fsdp")                     # largest dim
  assert spec((4096, 8190)) == jax.sharding.PartitionSpec("fsdp", None)
  assert spec((256,)) == jax.sharding.PartitionSpec()  # small: replicated
  assert spec((16385,)) == jax.sharding.PartitionSpec()  # nothing divides
  one_d = train_state.make_mesh(jax.devices()[:8])
  assert train_state.leaf_sharding(one_d, jax.ShapeDtypeStruct(
      (4096, 4096), np.float32)).spec == jax.sharding.PartitionSpec()
  with pytest.raises(ValueError, match="must divide the 8 devices"):
    train_state.make_mesh(jax.devices()[:8], fsdp=3)


def test_per_device_state_bytes_fall_with_fsdp(data_dir):
  cfg = _method_config(data_dir, "vicreg")
  cfg.projector = "1024-1024"  # arrays large enough to split
  batch = _batch(cfg, data_dir)
  args = {}
  for fsdp in (1, 4):
    mesh = train_state.make_mesh(jax.devices()[:8], fsdp=fsdp)
    s = train_state.setup(cfg, 1000, 20, mesh=mesh)
    state = jax.eval_shape(lambda s=s: train_state.init_state(s, 0))
    compiled = train_step.jit_train_step(s).lower(
        state, pipeline.to_global(batch, mesh)).compile()
    args[fsdp] = perf.compiled_memory(compiled)["arguments"]
  # Parameters + AdamW's two moments dominate the arguments: a quarter
  # each, plus the batch and the small replicated leaves.
  assert args[4] < 0.35 * args[1], args


def test_checkpoint_written_under_fsdp_resumes_on_one_axis(data_dir,
                                                           tmp_path):
  big = {"projector": "512-512"}  # arrays large enough to split
  cut = train.train_and_evaluate(
      helpers.tiny_config(data_dir, stop_after_steps=2,
                          **{"mesh.fsdp": 4}, **big), str(tmp_path))
  assert any("fsdp" in x.sharding.spec for x in jax.tree.leaves(cut.params))
  # Read back replicated (orbax reshards): every value bit for bit.
  _, variables, _, _ = saved_runs.load(str(tmp_path))
  for a, b in zip(jax.tree.leaves(jax.device_get(cut.params)),
                  jax.tree.leaves(jax.device_get(variables["params"]))):
    np.testing.assert_array_equal(a, b)
  # The same workdir resumes on the 1-D mesh (mesh.fsdp is not part of
  # the run's identity) and finishes.
  resumed = train.train_and_evaluate(helpers.tiny_config(data_dir, **big),
                                     str(tmp_path))
  assert int(resumed.step) == 4
  assert all(x.sharding.spec == jax.sharding.PartitionSpec()
             for x in jax.tree.leaves(resumed.params))
