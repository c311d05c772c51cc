"""Is a dataset learnable, and by what? Supervised small CNN vs pixel-space
logistic regression, on fine and coarse labels.

  python benchmarks/dataset_learnability.py --dataset=hierarchical_shapes

A small ResNet (CIFAR stem, width 16; `ssljax.analysis.supervised`) trained
with AdamW + cosine for --epochs on the train split with random flips and
±4 px translations; the
logistic regression (scikit-learn, standardized pixels, C=--logreg_c) is the
linear baseline. Prints test accuracies and writes them as JSON to --out.

For the fine label of a dataset with a class tree (coarse_label, and
super_label where present) it also measures whether the CNN's geometry
follows the tree, the acceptance test of `hierarchical_shapes` 3.0.0:
`tree`: Spearman / Kendall / cophenetic correlations of the distances
between the fine-class centroids of its penultimate test features against
the tree distance (`ssljax.evals.hierarchy`), and `errors_within_coarse` /
`errors_within_super`: the share of its wrong test predictions that stay
in the true class's family / super-family (with the chance shares for a
uniformly wrong fine prediction).
"""

import json
import time

from absl import app
from absl import flags
import numpy as np

import ssljax.data
from ssljax.analysis import supervised
from ssljax.evals import hierarchy

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
  # Every label level, also those not trained on: the tree metrics of the
  # fine-label CNN need the parents.
  keys = dict.fromkeys(list(FLAGS.labels) + ["label", "coarse_label",
                                             "super_label"])
  labels = {k: np.array([e[k] for e in ex]) for k in keys if k in ex[0]}
  return x, labels


def logreg(x_tr, y_tr, x_te, y_te, c):
  from sklearn.linear_model import LogisticRegression  # test-only oracle dep
  from sklearn.preprocessing import StandardScaler
  scaler = StandardScaler().fit(x_tr.reshape(len(x_tr), -1))
  f = lambda x: scaler.transform(x.reshape(len(x), -1))
  clf = LogisticRegression(C=c, max_iter=300).fit(f(x_tr), y_tr)
  return float(clf.score(f(x_te), y_te))


def tree_geometry(fit, y_te):
  """Tree metrics of a fine-label classifier (module docstring)."""
  levels = [k for k in ("coarse_label", "super_label") if k in y_te]
  if not levels:
    return {}
  fine = y_te["label"]
  out = {"tree": hierarchy.hierarchy_rank_correlation(
      fit["feat_nd"], fine, [y_te[k] for k in levels])}
  wrong = fit["pred_n"] != fine
  num_fine = int(fine.max()) + 1
  for k in levels:
    parent = hierarchy.parents_of(fine, y_te[k], num_fine)
    same = parent[fit["pred_n"][wrong]] == parent[fine[wrong]]
    # A uniformly wrong prediction lands on a sibling with probability
    # (siblings − 1) / (classes − 1).
    siblings = np.bincount(parent)[parent[fine]] - 1
    name = k.replace("_label", "")
    out[f"errors_within_{name}"] = float(same.mean()) if wrong.any() else None
    out[f"errors_within_{name}_chance"] = float(np.mean(siblings) /
                                               (num_fine - 1))
  out["num_errors"] = int(wrong.sum())
  return out


def main(_):
  x_tr, y_tr = arrays("train")
  x_te, y_te = arrays("test")
  results = {"dataset": FLAGS.dataset, "num_train": len(x_tr),
             "num_test": len(x_te)}
  for key in [k for k in FLAGS.labels if k in y_tr]:  # trained on
    chance = float(np.max(np.bincount(y_te[key])) / len(y_te[key]))
    t = time.time()
    lr = logreg(x_tr, y_tr[key], x_te, y_te[key], FLAGS.logreg_c)
    t_lr = time.time() - t
    print(f"{key}: logreg on pixels {lr:.4f} ({t_lr:.0f} s), majority "
          f"class {chance:.4f}", flush=True)
    t = time.time()
    fit = supervised.fit_classifier(
        supervised.to_float(x_tr), y_tr[key], supervised.to_float(x_te),
        y_te[key], arch=FLAGS.arch, width=FLAGS.width, epochs=FLAGS.epochs,
        batch_size=FLAGS.batch, shift=4)
    results[key] = {"majority_class": chance, "logreg_pixels": lr,
                    "small_cnn": fit["accuracy"],
                    "logreg_seconds": round(t_lr, 1),
                    "cnn_seconds": round(time.time() - t, 1)}
    if key == "label":
      results[key].update(tree_geometry(fit, y_te))
    print(key, results[key], flush=True)
  if FLAGS.out:
    with open(FLAGS.out, "w") as f:
      json.dump(results, f, indent=1)


if __name__ == "__main__":
  app.run(main)
