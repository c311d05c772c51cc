"""ssljax.weights: encoder weights <-> torchvision / timm state dicts."""
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import models
from ssljax import weights
from ssljax.methods import mae
from ssljax.models import vit
from tests import helpers

with open(os.path.join(helpers.ROOT, "tests", "fixtures",
                       "torch_state_dicts.json")) as f:
  # Key names and shapes of torchvision's and timm's default models (the
  # generating versions under "_generated_with").
  REFERENCE = json.load(f)


def _randomize(tree, seed):
  """Every leaf random (BN variances positive), so a swapped or transposed
  entry cannot pass."""
  leaves, treedef = jax.tree.flatten(tree)
  rng = np.random.default_rng(seed)
  return jax.tree.unflatten(treedef, [
      (rng.normal(size=x.shape) * 0.1).astype(np.float32) for x in leaves])


def _resnet(name, image=32, **kw):
  net = models.build(name, **kw)
  v = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0),
                                      jnp.zeros((1, image, image, 3))))
  params = _randomize(v["params"], 1)
  stats = _randomize(v["batch_stats"], 2)
  stats = jax.tree_util.tree_map_with_path(
      lambda p, x: np.abs(x) + 0.5 if p[-1].key == "var" else x, stats)
  return net, params, stats


def _vit(name, image=32, **kw):
  net = models.build(name, image_size=image, **kw)
  v = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0),
                                      jnp.zeros((1, image, image, 3))))
  return net, _randomize(v["params"], 3)


def _shapes(sd):
  return {k: list(np.shape(v)) for k, v in sd.items()}


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_export_has_torchvision_keys_and_shapes(name):
  v = jax.eval_shape(lambda: models.build(name).init(
      jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3))))
  zeros = lambda t: jax.tree.map(lambda s: np.zeros(s.shape, np.float32), t)
  params, stats = zeros(v["params"]), zeros(v["batch_stats"])
  sd = weights.resnet_to_torch(params, stats)
  assert _shapes(sd) == REFERENCE[f"torchvision/{name}"]
  assert sd["layer2.0.downsample.0.weight"].shape[2:] == (1, 1)  # OIHW


@pytest.mark.parametrize("name,timm_name", [
    ("vit_tiny", "vit_tiny_patch16_224"),
    ("vit_small", "vit_small_patch16_224"),
    ("vit_base", "vit_base_patch16_224")])
def test_vit_export_has_timm_keys_and_shapes(name, timm_name):
  net = models.build(name)
  shapes = jax.eval_shape(lambda: net.init(
      jax.random.PRNGKey(0), jnp.zeros((1, 224, 224, 3))))["params"]
  params = jax.tree.map(lambda s: np.zeros(s.shape, np.float32), shapes)
  sd = weights.vit_to_torch(params, weights.VIT, 16)
  assert _shapes(sd) == REFERENCE[f"timm/{timm_name}"]


def test_resnet_round_trip_is_exact_and_no_classifier_on_request():
  _, params, stats = _resnet("resnet18", stem="cifar", width=16)
  sd = weights.resnet_to_torch(params, stats, num_classes=0)
  assert not any(k.startswith("fc.") for k in sd)
  p2, s2 = weights.resnet_from_torch(sd, params, stats)
  jax.tree.map(np.testing.assert_array_equal, p2, params)
  jax.tree.map(np.testing.assert_array_equal, s2, stats)
  sd2 = weights.resnet_to_torch(p2, s2, num_classes=0)
  assert sd2.keys() == sd.keys()
  for k in sd:
    np.testing.assert_array_equal(sd2[k], sd[k])


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_vit_round_trip_is_exact(pool):
  _, params = _vit("vit_tiny", patch_size=4, pool=pool)
  sd = weights.vit_to_torch(params, weights.VIT, 4)
  assert ("cls_token" in sd) == (pool == "cls")
  assert sd["pos_embed"].shape == (1, 64 + (pool == "cls"), 192)
  back = weights.vit_from_torch(sd, weights.VIT, params, 4)
  jax.tree.map(np.testing.assert_array_equal, back, params)


def test_import_refuses_a_mismatched_architecture():
  _, params, stats = _resnet("resnet18", width=8)
  sd = weights.resnet_to_torch(params, stats)
  _, p34, s34 = _resnet("resnet34", width=8)
  with pytest.raises(weights.StateDictMismatch, match="layer1.2"):
    weights.resnet_from_torch(sd, p34, s34)
  sd34 = weights.resnet_to_torch(p34, s34)
  with pytest.raises(ValueError, match="not in the config's model"):
    weights.resnet_from_torch(sd34, params, stats)
  _, wide, wide_stats = _resnet("resnet18", width=16)
  with pytest.raises(ValueError, match="shape"):
    weights.resnet_from_torch(sd, wide, wide_stats)


def _mae_params(patch=4, image=32):
  net = mae.MAE(width=192, depth=2, num_heads=3, patch_size=patch,
                decoder_width=64, decoder_depth=1, decoder_heads=2)
  v = jax.eval_shape(lambda: net.init(jax.random.PRNGKey(0),
                                      [jnp.zeros((1, image, image, 3))]))
  pos = vit.sincos_2d(image // patch, 192)
  return net, _randomize(v["params"], 4), np.asarray(pos)


def test_mae_round_trip_and_position_check():
  _, params, pos = _mae_params()
  sd = weights.vit_to_torch(params, weights.MAE, 4, mae_pos=pos)
  np.testing.assert_array_equal(sd["pos_embed"][0, 0], 0)  # class position
  assert sd["patch_embed.proj.weight"].shape == (192, 3, 4, 4)
  back = weights.vit_from_torch(sd, weights.MAE, params, 4, mae_pos=pos)
  assert not any(k.startswith("decoder") for k in back)
  for k, v in back.items():
    jax.tree.map(np.testing.assert_array_equal, v, params[k])
  sd["pos_embed"] = sd["pos_embed"] + 0.1  # learned positions: not MAE's
  with pytest.raises(ValueError, match="sin-cos"):
    weights.vit_from_torch(sd, weights.MAE, params, 4, mae_pos=pos)


# ----------------------------------------------------------------------------
# Against the real libraries (torch, torchvision, timm: the `bench` extra).
# ----------------------------------------------------------------------------
def _torch():
  torch = pytest.importorskip("torch", reason="needs torch (bench extra)")
  return torch


def _nchw(torch, x):
  return torch.from_numpy(np.ascontiguousarray(np.transpose(x, (0, 3, 1, 2))))


@pytest.mark.parametrize("name,stem", [("resnet18", "imagenet"),
                                       ("resnet50", "imagenet"),
                                       ("resnet18", "cifar")])
def test_resnet_features_equal_torchvision(name, stem):
  torch = _torch()
  torchvision = pytest.importorskip("torchvision")
  net, params, stats = _resnet(name, image=64, stem=stem)
  x = np.random.RandomState(0).randn(2, 64, 64, 3).astype(np.float32)
  ours, _ = net.apply({"params": params, "batch_stats": stats}, x)
  model = getattr(torchvision.models, name)()
  if stem == "cifar":
    model.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
    model.maxpool = torch.nn.Identity()
  model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in
                         weights.resnet_to_torch(params, stats).items()},
                        strict=True)
  model.fc = torch.nn.Identity()
  with torch.no_grad():
    theirs = model.eval()(_nchw(torch, x)).numpy()
  np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("pool", ["cls", "gap"])
def test_vit_features_equal_timm(pool):
  torch = _torch()
  timm = pytest.importorskip("timm")
  net, params = _vit("vit_tiny", patch_size=4, pool=pool)
  x = np.random.RandomState(0).randn(2, 32, 32, 3).astype(np.float32)
  ours, _ = net.apply({"params": params}, x)
  kw = dict(img_size=32, patch_size=4, num_classes=0)
  if pool == "gap":
    kw.update(class_token=False, global_pool="avg", fc_norm=False)
  model = timm.create_model("vit_tiny_patch16_224", **kw)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in
                         weights.vit_to_torch(params, weights.VIT, 4,
                                              num_classes=0).items()},
                        strict=True)
  with torch.no_grad():
    theirs = model.eval()(_nchw(torch, x)).numpy()
  np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)


def test_mae_encoder_features_equal_timm():
  torch = _torch()
  timm = pytest.importorskip("timm")
  net, params, pos = _mae_params()
  x = np.random.RandomState(0).randn(2, 32, 32, 3).astype(np.float32)
  ours = net.apply({"params": params}, x, method="represent")["rep"]
  model = timm.create_model("vit_tiny_patch16_224", img_size=32, patch_size=4,
                            depth=2, num_classes=0)
  model.load_state_dict({k: torch.from_numpy(v) for k, v in
                         weights.vit_to_torch(params, weights.MAE, 4, 0,
                                              mae_pos=pos).items()},
                        strict=True)
  with torch.no_grad():
    theirs = model.eval()(_nchw(torch, x)).numpy()
  np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)
