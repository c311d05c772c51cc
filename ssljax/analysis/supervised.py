"""A supervised image classifier trained from arrays: the reference "can a
CNN read the class from these pixels?" used by the data checks and by the
learning-by-reconstruction experiment (top vs bottom PCA subspaces).

One recipe for every input so that accuracies are comparable: AdamW
(weight decay 5e-4) with a cosine schedule from `lr`, batch `batch_size`,
random horizontal flips and ±`shift` px circular translations, cross-entropy.
Inputs are float32 [n, H, W, C] already normalized by the caller (the PCA
projections are standardized per image; uint8 images go through `to_float`).

Architectures:
  convnet   4 blocks of conv3×3-BN-ReLU (widths w, 2w, 4w, 8w; 2×2 max-pool
            after the first three), global average pool, linear head. At
            w = 32 and 32 px one epoch of 10k images takes seconds on 2 CPU
            cores, so many cells fit a CPU budget.
  resnet18  the project's ResNet-18 with the CIFAR stem at width w.
"""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssljax import models

ARCHS = ("convnet", "resnet18")


def to_float(x_uint8):
  """uint8 images → float32 roughly in [-2, 2]."""
  return (np.asarray(x_uint8, np.float32) / 255.0 - 0.5) / 0.25


class ConvNet(nn.Module):
  num_classes: int
  width: int = 32

  @nn.compact
  def __call__(self, x, train):
    for i in range(4):
      x = nn.Conv(self.width * 2**i, (3, 3), use_bias=False)(x)
      x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
      if i < 3:
        x = nn.max_pool(x, (2, 2), (2, 2))
    feat = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes)(feat), feat


class _ResNet(nn.Module):
  num_classes: int
  width: int = 16

  @nn.compact
  def __call__(self, x, train):
    rep, _ = models.build("resnet18", stem="cifar", width=self.width)(x, train)
    return nn.Dense(self.num_classes)(rep), rep


def make_model(arch, num_classes, width):
  if arch not in ARCHS:
    raise ValueError(f"Unknown classifier arch {arch!r}; valid: "
                     f"{', '.join(ARCHS)}.")
  return (ConvNet if arch == "convnet" else _ResNet)(num_classes, width)


@functools.lru_cache(maxsize=8)
def _compiled(arch, num_classes, width, lr, total_steps, shift):
  """(model, tx, step, predict), cached so that cells with the same recipe
  and shapes (e.g. every PCA projection of one dataset) compile once."""
  model = make_model(arch, num_classes, width)
  tx = optax.adamw(optax.cosine_decay_schedule(lr, total_steps),
                   weight_decay=5e-4)

  @jax.jit
  def step(params, stats, opt, x, y, key):
    kf, ks = jax.random.split(key)
    flip = jax.random.bernoulli(kf, 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, :, ::-1], x)
    sh = jax.random.randint(ks, (2,), -shift, shift + 1)
    x = jnp.roll(x, (sh[0], sh[1]), axis=(1, 2))

    def loss_fn(p):
      (logits, _), new = model.apply({"params": p, "batch_stats": stats}, x,
                                     train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(
          logits.astype(jnp.float32), y).mean()
      return loss, new["batch_stats"]

    (loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), stats, opt, loss

  @jax.jit
  def predict(p, s, x):
    logits, feat = model.apply({"params": p, "batch_stats": s}, x,
                               train=False)
    return logits.argmax(-1), feat.astype(jnp.float32)

  return model, tx, step, predict


def train_classifier(x_train, y_train, x_test, y_test, **kwargs):
  """Test accuracy of `arch` trained on (x_train, y_train) with the recipe
  of the module docstring; deterministic for a seed on one machine.
  Keyword arguments: those of `fit_classifier`."""
  return fit_classifier(x_train, y_train, x_test, y_test, **kwargs)[
      "accuracy"]


def fit_classifier(x_train, y_train, x_test, y_test, *, arch="convnet",
                   width=32, epochs=15, batch_size=128, lr=2e-3, shift=2,
                   num_classes=None, seed=0):
  """`train_classifier` with its details: {"accuracy": test accuracy,
  "pred_n": test predictions, "feat_nd": the test images' penultimate
  features (the pooled trunk output the linear head reads), float32}."""
  make_model(arch, 1, width)  # refuses an unknown arch before any work
  x_train = np.asarray(x_train, np.float32)
  x_test = np.asarray(x_test, np.float32)
  y_train, y_test = np.asarray(y_train), np.asarray(y_test)
  if num_classes is None:
    num_classes = int(max(y_train.max(), y_test.max())) + 1
  steps_per_epoch = len(x_train) // batch_size
  if steps_per_epoch == 0:
    raise ValueError(f"batch_size {batch_size} exceeds the {len(x_train)} "
                     "training examples; lower it.")
  model, tx, step, predict = _compiled(arch, num_classes, width, lr,
                                       epochs * steps_per_epoch, shift)
  v = model.init(jax.random.key(seed), x_train[:2], train=False)
  params, stats, opt = v["params"], v["batch_stats"], tx.init(v["params"])
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  for _ in range(epochs):
    perm = rng.permutation(len(x_train))
    for i in range(steps_per_epoch):
      idx = perm[i * batch_size:(i + 1) * batch_size]
      key, sub = jax.random.split(key)
      params, stats, opt, _ = step(params, stats, opt, x_train[idx],
                                   y_train[idx], sub)
  out = [jax.device_get(predict(params, stats, x_test[i:i + 500]))
         for i in range(0, len(x_test), 500)]
  pred = np.concatenate([o[0] for o in out])
  return {"accuracy": float(np.mean(pred == y_test)), "pred_n": pred,
          "feat_nd": np.concatenate([o[1] for o in out])}
