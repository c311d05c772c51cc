"""The method contract: a method written only against ssljax.methods.base
trains through train.py unchanged; evaluation needs no training code."""
import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from ssljax import methods
from ssljax import models
from ssljax import train
from ssljax import train_state
from ssljax.methods import base
from tests import helpers


class _Net(nn.Module):
  encoder: nn.Module

  @nn.compact
  def __call__(self, views, train=True):
    rep, _ = self.encoder(views[0], train=train)
    return rep, nn.Dense(4, name="head")(rep)

  def represent(self, x, layers=False):
    return base.encoder_features(self.encoder, x, layers)


class _Toy:
  """A method with its own state: a step count and a running mean of the
  head's output, updated in the loss (count) and after the update (mean)."""

  @staticmethod
  def default_config():
    return ml_collections.ConfigDict(dict(toy=dict(decay=0.5)))

  @staticmethod
  def build(cfg):
    return _Net(models.from_config(cfg.model))

  @staticmethod
  def make_objective(cfg, net, *, mesh=None, total_steps=None):
    del mesh, total_steps

    def loss_fn(variables, state, views, key):
      (rep, z), new = net.apply(variables, views, train=True,
                                mutable=["batch_stats"])
      noise = jax.random.normal(key, z.shape)
      loss = jnp.mean(jnp.square(z - noise))
      state = dict(state, count=state["count"] + 1)
      return loss, base.LossAux({"loss": loss}, new["batch_stats"], state,
                                rep)

    def update_state(state, variables, step):
      del step
      w = variables["params"]["head"]["kernel"]
      mean = cfg.toy.decay * state["mean"] + (1 - cfg.toy.decay) * w
      return dict(state, mean=mean), {"toy_mean": jnp.mean(mean)}

    return base.Objective(
        loss_fn,
        init_state=lambda v: {"count": jnp.int32(0),
                              "mean": jnp.zeros_like(
                                  v["params"]["head"]["kernel"])},
        update_state=update_state)


def test_a_new_method_trains_without_touching_train_py(data_dir, tmp_path,
                                                       monkeypatch):
  monkeypatch.setitem(methods.METHODS, "toy", _Toy)
  cfg = helpers.tiny_config(data_dir, num_steps=3)
  cfg.method = "toy"
  cfg.update(_Toy.default_config())
  s = train_state.setup(cfg, 1000, 20)
  probe0 = np.asarray(train_state.init_state(s, cfg.seed).params["probe"]["kernel"])
  state = train.train_and_evaluate(cfg, str(tmp_path))
  assert int(state.method_state["count"]) == 3
  w = np.asarray(state.params["head"]["kernel"])
  assert np.abs(np.asarray(state.method_state["mean"])).max() > 0
  assert np.abs(w).max() > 0 and "probe" in state.params
  # the online probe trained on the toy encoder's features
  assert not np.array_equal(probe0, state.params["probe"]["kernel"])


def test_probe_init_does_not_change_the_network_init():
  cfg = helpers.load_config("quickstart")
  cfg.model.width, cfg.data.image_size = 4, 16
  net = methods.build(cfg)
  views = base.sample_views(cfg.data)
  key = jax.random.fold_in(jax.random.PRNGKey(0), 1)
  alone = net.init(key, views, train=False)["params"]
  with_probe = base.init_variables(net, views, 10, 0)["params"]
  assert set(with_probe) == set(alone) | {"probe"}
  for a, b in zip(jax.tree.leaves(alone),
                  jax.tree.leaves({k: with_probe[k] for k in alone})):
    np.testing.assert_array_equal(a, b)
  assert with_probe["probe"]["kernel"].shape == (32, 10)


def test_evaluation_imports_no_training_code():
  code = ("import sys; import ssljax.evals; "
          "assert 'ssljax.losses' not in sys.modules, 'evals'; "
          "import ssljax.cli.eval; "
          "assert 'ssljax.train' not in sys.modules, 'ssljax-eval'")
  subprocess.run([sys.executable, "-c", code], check=True,
                 cwd=helpers.ROOT, timeout=300)
