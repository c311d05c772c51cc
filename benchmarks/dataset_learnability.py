"""Is a dataset learnable, and by what? Supervised small CNN vs pixel-space
logistic regression, on fine and coarse labels.

  python benchmarks/dataset_learnability.py --dataset=hierarchical_shapes

A small ResNet (CIFAR stem, width 16; `ssljax.analysis.supervised`) trained
with AdamW + cosine for --epochs on the train split with random flips and
±4 px translations; the
logistic regression (scikit-learn, standardized pixels, C=--logreg_c) is the
linear baseline. Prints test accuracies and writes them as JSON to --out.
"""

import json
import time

from absl import app
from absl import flags
import numpy as np

import ssljax.data
from ssljax.analysis import supervised

flags.DEFINE_string("dataset", "hierarchical_shapes", "TFDS name.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
flags.DEFINE_integer("epochs", 15, "CNN epochs.")
flags.DEFINE_enum("arch", "resnet18", supervised.ARCHS, "CNN architecture.")
flags.DEFINE_integer("width", 16, "CNN width.")
flags.DEFINE_integer("batch", 128, "CNN batch size.")
flags.DEFINE_float("logreg_c", 0.01, "Inverse L2 strength of the logreg.")
flags.DEFINE_string("out", None, "Optional JSON output path.")
flags.DEFINE_list("labels", ["label", "coarse_label", "super_label"],
                  "Label fields to run (those the dataset has).")
FLAGS = flags.FLAGS


def arrays(split):
  src = ssljax.data.load_source(FLAGS.dataset, split, FLAGS.data_dir)
  ex = [src[i] for i in range(len(src))]
  x = np.stack([e["image"] for e in ex])
  labels = {k: np.array([e[k] for e in ex]) for k in FLAGS.labels
            if k in ex[0]}
  return x, labels


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
    cnn = supervised.train_classifier(
        supervised.to_float(x_tr), y_tr[key], supervised.to_float(x_te),
        y_te[key], arch=FLAGS.arch, width=FLAGS.width, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch, shift=4)
    results[key] = {"majority_class": chance, "logreg_pixels": lr,
                    "small_cnn": cnn, "logreg_seconds": round(t_lr, 1),
                    "cnn_seconds": round(time.time() - t, 1)}
    print(key, results[key], flush=True)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)
