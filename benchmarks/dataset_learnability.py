"""Is a dataset learnable, and by what? Supervised small CNN vs pixel-space
logistic regression, on fine and coarse labels.

  python benchmarks/dataset_learnability.py --dataset=hierarchical_shapes

A small ResNet (CIFAR stem, width 16) trained with AdamW + cosine for
--epochs on the train split with random flips and ±4 px translations; the
logistic regression (scikit-learn, standardized pixels, C=--logreg_c) is the
linear baseline. Prints test accuracies and writes them as JSON to --out.
"""

import json
import time

from absl import app
from absl import flags
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import ssljax.data
from ssljax import models

flags.DEFINE_string("dataset", "hierarchical_shapes", "TFDS name.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
flags.DEFINE_integer("epochs", 15, "CNN epochs.")
flags.DEFINE_integer("batch", 128, "CNN batch size.")
flags.DEFINE_float("logreg_c", 0.01, "Inverse L2 strength of the logreg.")
flags.DEFINE_string("out", None, "Optional JSON output path.")
flags.DEFINE_list("labels", ["label", "coarse_label"], "Label fields to run.")
FLAGS = flags.FLAGS


def arrays(split):
  src = ssljax.data.load_source(FLAGS.dataset, split, FLAGS.data_dir)
  ex = [src[i] for i in range(len(src))]
  x = np.stack([e["image"] for e in ex])
  labels = {k: np.array([e[k] for e in ex]) for k in ("label", "coarse_label")
            if k in ex[0]}
  return x, labels


class Classifier(nn.Module):
  num_classes: int

  @nn.compact
  def __call__(self, x, train):
    rep, _ = models.build("resnet18", stem="cifar", width=16)(x, train)
    return nn.Dense(self.num_classes)(rep)


def train_cnn(x_tr, y_tr, x_te, y_te, epochs, batch, seed=0):
  model = Classifier(int(y_tr.max()) + 1)
  norm = lambda x: (x.astype(jnp.float32) / 255.0 - 0.5) / 0.25
  steps = epochs * (len(x_tr) // batch)
  tx = optax.adamw(optax.cosine_decay_schedule(2e-3, steps), weight_decay=5e-4)
  v = model.init(jax.random.key(seed), norm(x_tr[:2]), train=False)
  params, stats, opt = v["params"], v["batch_stats"], tx.init(v["params"])

  @jax.jit
  def step(params, stats, opt, x, y, key):
    kf, ks = jax.random.split(key)
    flip = jax.random.bernoulli(kf, 0.5, (x.shape[0], 1, 1, 1))
    x = jnp.where(flip, x[:, :, ::-1], x)
    sh = jax.random.randint(ks, (2,), -4, 5)
    x = jnp.roll(x, (sh[0], sh[1]), axis=(1, 2))

    def loss_fn(p):
      logits, new = model.apply({"params": p, "batch_stats": stats}, norm(x),
                                train=True, mutable=["batch_stats"])
      loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
      return loss, new["batch_stats"]

    (loss, stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt = tx.update(g, opt, params)
    return optax.apply_updates(params, updates), stats, opt, loss

  predict = jax.jit(lambda p, s, x: model.apply(
      {"params": p, "batch_stats": s}, norm(x), train=False).argmax(-1))
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  for _ in range(epochs):
    perm = rng.permutation(len(x_tr))
    for i in range(len(x_tr) // batch):
      idx = perm[i * batch:(i + 1) * batch]
      key, sub = jax.random.split(key)
      params, stats, opt, _ = step(params, stats, opt, x_tr[idx], y_tr[idx],
                                   sub)
  pred = np.concatenate([predict(params, stats, x_te[i:i + 500])
                         for i in range(0, len(x_te), 500)])
  return float(np.mean(pred == y_te))


def logreg(x_tr, y_tr, x_te, y_te, c):
  from sklearn.linear_model import LogisticRegression  # test-only oracle dep
  from sklearn.preprocessing import StandardScaler
  scaler = StandardScaler().fit(x_tr.reshape(len(x_tr), -1))
  f = lambda x: scaler.transform(x.reshape(len(x), -1))
  clf = LogisticRegression(C=c, max_iter=300).fit(f(x_tr), y_tr)
  return float(clf.score(f(x_te), y_te))


def main(_):
  x_tr, y_tr = arrays("train")
  x_te, y_te = arrays("test")
  results = {"dataset": FLAGS.dataset, "num_train": len(x_tr),
             "num_test": len(x_te)}
  for key in [k for k in FLAGS.labels if k in y_tr]:
    chance = float(np.max(np.bincount(y_te[key])) / len(y_te[key]))
    t = time.time()
    lr = logreg(x_tr, y_tr[key], x_te, y_te[key], FLAGS.logreg_c)
    t_lr = time.time() - t
    print(f"{key}: logreg on pixels {lr:.4f} ({t_lr:.0f} s), majority "
          f"class {chance:.4f}", flush=True)
    t = time.time()
    cnn = train_cnn(x_tr, y_tr[key], x_te, y_te[key], FLAGS.epochs,
                    FLAGS.batch)
    results[key] = {"majority_class": chance, "logreg_pixels": lr,
                    "small_cnn": cnn, "logreg_seconds": round(t_lr, 1),
                    "cnn_seconds": round(time.time() - t, 1)}
    print(key, results[key], flush=True)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)
