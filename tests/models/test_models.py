import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ssljax import models
from ssljax.models import vit


def _num_params(module, shape):
  variables = jax.eval_shape(
      lambda: module.init(jax.random.key(0), jnp.zeros(shape)))
  return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(
      variables["params"]))


@pytest.mark.parametrize("name,count", [
    ("resnet18", 11_176_512),   # torchvision resnet18 minus fc (513,000)
    ("resnet34", 21_284_672),   # torchvision resnet34 minus fc
    ("resnet50", 23_508_032),   # torchvision resnet50 minus fc (2,049,000)
    ("vit_small", 21_665_664),  # timm vit_small_patch16_224, num_classes=0
    ("vit_base", 85_798_656),   # timm vit_base_patch16_224, num_classes=0
    ("vit_large", 303_301_632),  # timm vit_large_patch16_224, num_classes=0
    ("vit_huge", 630_764_800),  # timm vit_huge_patch14_224, num_classes=0
])
def test_parameter_counts_match_standard_models(name, count):
  assert _num_params(models.build(name), (1, 224, 224, 3)) == count


def test_resnet_outputs_and_intermediates():
  m = models.build("resnet18", stem="cifar", width=8)
  x = jnp.ones((2, 32, 32, 3))
  v = m.init(jax.random.key(0), x)
  (rep, inter), new_state = m.apply(v, x, train=True, mutable=["batch_stats"])
  assert rep.shape == (2, 64) == (2, models.representation_dim(
      "resnet18", width=8))
  assert list(inter) == ["stem", "stage1", "stage2", "stage3", "stage4"]
  assert inter["stage1"].shape == (2, 32, 32, 8)
  assert inter["stage4"].shape == (2, 4, 4, 64)
  changed = jax.tree.map(lambda a, b: not np.allclose(a, b),
                         v["batch_stats"], new_state["batch_stats"])
  assert any(jax.tree.leaves(changed))
  rep_eval, _ = m.apply(v, x, train=False)
  assert rep_eval.shape == (2, 64)


def test_imagenet_stem_downsamples_by_32():
  m = models.build("resnet50", width=8)
  x = jnp.ones((1, 64, 64, 3))
  (rep, inter) = m.apply(m.init(jax.random.key(0), x), x)
  assert inter["stage4"].shape == (1, 2, 2, 256) and rep.shape == (1, 256)


def test_zero_init_residual():
  m = models.build("resnet50", width=8, zero_init_residual=True)
  p = m.init(jax.random.key(0), jnp.ones((1, 32, 32, 3)))["params"]
  assert all((p[k]["bn3"]["scale"] == 0).all() for k in p if "block" in k)
  assert (p["stem_bn"]["scale"] == 1).all()


def test_vit_pooling_dtype_and_position_resize():
  m = models.build("vit_tiny", patch_size=8, image_size=32, dtype="bfloat16")
  v = m.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(v))
  rep, inter = m.apply(v, jnp.ones((2, 16, 16, 3)))  # a smaller local crop
  assert rep.shape == (2, 192) and rep.dtype == jnp.bfloat16
  assert len(inter) == 12 and inter["block1"].shape == (2, 1 + 4, 192)
  gap = models.build("vit_tiny", patch_size=8, image_size=32, pool="gap")
  vg = gap.init(jax.random.key(0), jnp.zeros((2, 32, 32, 3)))
  assert "cls_token" not in vg["params"]
  assert gap.apply(vg, jnp.ones((2, 32, 32, 3)))[1]["block1"].shape == (
      2, 16, 192)


def test_mlp_heads():
  x = jnp.ones((4, 16))
  proj = models.MLP("32-32-8", hidden_bias=True, last_bias=False)
  v = proj.init(jax.random.key(0), x)
  assert "bias" in v["params"]["fc1"] and "bias" not in v["params"]["fc3"]
  assert set(v["batch_stats"]) == {"bn1", "bn2"}
  out, _ = proj.apply(v, x, train=True, mutable=["batch_stats"])
  assert out.shape == (4, 8) and out.dtype == jnp.float32
  mveb = models.MLP("32-32-8", hidden_bias=False, last_bias=True,
                    dtype=jnp.bfloat16)
  vm = mveb.init(jax.random.key(0), x)
  assert "bias" not in vm["params"]["fc1"] and "bias" in vm["params"]["fc3"]
  assert mveb.apply(vm, x).dtype == jnp.float32
  with pytest.raises(ValueError, match="Bad MLP spec"):
    models.parse_spec("8192-x")


def test_bad_names_list_valid_ones():
  with pytest.raises(ValueError, match="valid: resnet18"):
    models.build("resnet51")
  with pytest.raises(ValueError, match="valid: .*stem"):
    models.build("resnet50", stride=2)
  with pytest.raises(ValueError, match="valid: float32"):
    models.build("resnet50", dtype="fp8")


def test_vit_drop_path_is_per_example_stochastic_depth():
  from ssljax.models import vit  # pylint: disable=g-import-not-at-top
  x = jax.random.normal(jax.random.key(0), (4, 16, 16, 3))
  plain = models.build("vit_tiny", patch_size=8, image_size=16, depth=3)
  dropped = models.build("vit_tiny", patch_size=8, image_size=16, depth=3,
                         drop_path=0.5)
  v = plain.init(jax.random.key(1), x)
  # Eval mode, or rate 0, is the plain network: same parameters, no RNG.
  np.testing.assert_array_equal(dropped.apply(v, x)[0], plain.apply(v, x)[0])
  train = dropped.apply(v, x, train=True, rngs={"dropout": jax.random.key(2)})
  assert not np.allclose(train[0], plain.apply(v, x)[0])
  # The branch op: each example is 0 or x / (1 - p), and unbiased.
  branch = jnp.ones((4000, 3))
  out = vit.drop_path(nn_scope(), branch, 0.25, True)
  vals = np.unique(np.asarray(out))
  np.testing.assert_allclose(vals, [0.0, 1 / 0.75], rtol=1e-6)
  assert abs(float(out.mean()) - 1.0) < 0.05
  with pytest.raises(ValueError, match="drop_path"):
    models.build("vit_tiny", drop_path=1.0).init(jax.random.key(0), x)


def nn_scope():
  """A stand-in module whose make_rng gives a fixed key."""
  class _M:
    def make_rng(self, _):
      return jax.random.key(3)
  return _M()


def test_sincos_embedding_is_fixed_and_distinct():
  e = vit.sincos_2d(4, 16)
  assert e.shape == (16, 16) and np.abs(e).max() <= 1
  assert len({tuple(np.round(r, 6)) for r in e}) == 16
  np.testing.assert_allclose(e[0], [0, 0, 0, 0, 1, 1, 1, 1] * 2)
