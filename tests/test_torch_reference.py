"""benchmarks/torch_reference.py (the PyTorch side of benchmarks/train_step.py
--torch) computes what ssljax computes. Skipped without torch (not a
dependency of ssljax; CI does not install it)."""

import os
import sys

import jax
import numpy as np
import pytest

from ssljax import losses
from ssljax import methods
from ssljax.methods import joint

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "benchmarks"))
import torch_reference  # pylint: disable=g-import-not-at-top,wrong-import-position


@pytest.mark.parametrize("n,d", [(64, 16), (16, 64)])  # d×d and Gram paths
def test_vicreg_matches_ssljax(n, d):
  rng = np.random.default_rng(n + d)
  z1 = rng.normal(size=(n, d)).astype(np.float32)
  z2 = (z1 + 0.5 * rng.normal(size=(n, d))).astype(np.float32)
  want, _ = losses.vicreg(z1, z2)
  got = torch_reference.vicreg(torch.from_numpy(z1), torch.from_numpy(z2))
  np.testing.assert_allclose(got.item(), float(want), rtol=1e-5)


def _copy_flax_to_torch(variables, module):
  """Loads Flax variables into the module of the same names: kernel / scale
  -> weight, Flax's separate attention q, k, v -> one qkv, position
  embedding grid -> token list."""
  flat = {}
  for tree in (variables["params"], variables.get("batch_stats", {})):
    for path, x in jax.tree_util.tree_flatten_with_path(tree)[0]:
      flat[".".join(k.key for k in path)] = np.array(x)
  for key in [k for k in flat if k.endswith("attn.query.kernel")]:
    b = key[:-len("attn.query.kernel")]
    d = flat[key].shape[0]
    for kind, axis in (("kernel", 1), ("bias", 0)):
      flat[f"{b}qkv.{kind}"] = np.concatenate(
          [flat.pop(f"{b}attn.{n}.{kind}").reshape(d, -1).squeeze()
           for n in ("query", "key", "value")], axis)
      flat[f"{b}proj.{kind}"] = flat.pop(f"{b}attn.out.{kind}").reshape(
          -1, d).squeeze()
  state = {}
  for key, x in flat.items():
    *head, last = key.split(".")
    if last == "kernel":  # HWIO -> OIHW, (in, out) -> (out, in)
      x = x.transpose(3, 2, 0, 1) if x.ndim == 4 else x.T
    if last == "pos_embed":
      x = x.reshape(1, -1, x.shape[-1])
    last = dict(kernel="weight", scale="weight", mean="running_mean",
                var="running_var").get(last, last)
    state[".".join(head + [last])] = torch.from_numpy(
        np.ascontiguousarray(x))
  missing, unexpected = module.load_state_dict(state, strict=False)
  assert not unexpected
  assert all(k.endswith("num_batches_tracked") for k in missing)


def test_quickstart_network_matches_ssljax():
  """Same weights -> same representations and projections in train mode
  (per-view BN statistics): layer widths, strides, stem, BN placement,
  projector biases."""
  sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                  "configs"))
  import quickstart  # pylint: disable=g-import-not-at-top
  c = quickstart.get_config()
  c.projector = "64-64-32"
  net = methods.get("vicreg").build(c)
  rng = np.random.default_rng(0)
  views = [rng.normal(size=(8, 32, 32, 3)).astype(np.float32)
           for _ in range(2)]
  variables = net.init(jax.random.PRNGKey(0), views, train=False)
  out, _ = joint.forward(net, variables, views)
  ref = torch_reference.JointEmbedding(c.model, c.projector)
  _copy_flax_to_torch(variables, ref)
  assert (sum(p.numel() for p in ref.parameters())
          == sum(x.size for x in jax.tree.leaves(variables["params"])))
  reps, zs = ref.train()([torch.from_numpy(v).permute(0, 3, 1, 2)
                          for v in views])
  for key, got in (("rep", reps), ("z", zs)):
    for v in range(2):
      np.testing.assert_allclose(got[v].detach().numpy(), out[key][v],
                                 rtol=1e-4, atol=1e-4)


def test_vit_matches_ssljax():
  """Same weights -> same CLS representation: pre-norm blocks, LayerNorm
  eps, attention scaling, exact GELU, class-token position embedding."""
  from ssljax import models  # pylint: disable=g-import-not-at-top
  cfg = dict(name="vit_tiny", image_size=32, patch_size=8, depth=2)
  enc = models.from_config(dict(cfg))
  x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype(np.float32)
  variables = enc.init(jax.random.PRNGKey(0), x)
  want, _ = enc.apply(variables, x)
  ref = torch_reference.build_encoder(cfg)
  _copy_flax_to_torch(variables, ref)
  got = ref(torch.from_numpy(x).permute(0, 3, 1, 2))
  np.testing.assert_allclose(got.detach().numpy(), want, rtol=1e-4,
                             atol=1e-4)


@pytest.mark.parametrize("model", [
    dict(name="resnet18", stem="cifar"), dict(name="resnet50"),
    dict(name="vit_small")])
def test_parameter_counts_match_ssljax(model):
  from ssljax import models  # pylint: disable=g-import-not-at-top
  enc = models.from_config(model)
  size = 32 if model.get("stem") == "cifar" else 224
  shapes = jax.eval_shape(enc.init, jax.random.PRNGKey(0),
                          jax.ShapeDtypeStruct((1, size, size, 3),
                                               np.float32))
  want = sum(x.size for x in jax.tree.leaves(shapes["params"]))
  got = sum(p.numel() for p in torch_reference.build_encoder(
      model).parameters())
  assert got == want
