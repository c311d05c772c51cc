"""Run a named subset of evaluations over layers, label levels and controls.

    for name, value in suite.run("ncc,cdnv,layers,random", train, test,
                                 levels=("label", "coarse_label")):
      ...

`train` / `test` are {"x": {layer: [n, d]}, "y": {label_key: [n]}} (as from
`monitor.extract`). The representation is layer "rep"; with "layers" every
other entry of "x" (GAP'd ResNet stages / ViT blocks) is evaluated too.
`levels` orders the label keys from fine to coarse; the first is the class.

Names are "layer/level/labels/metric": labels is "true" or "random" (the
random-label control, with "random"), level is a label key, "tree" for the
hierarchy metrics and "-" for the label-free RankMe.
"""

import re

import numpy as np

from ssljax.evals import clustering
from ssljax.evals import geometry
from ssljax.evals import hierarchy
from ssljax.evals import probes

EVALS = {
    "linear": "offline linear probe: test and train accuracy",
    "knn": "weighted cosine kNN accuracy for each k",
    "ncc": "nearest-class-centre accuracy, train and test (train means)",
    "cdnv": "class-distance normalized variance of train and test features",
    "hierarchy": "Spearman / Kendall / cophenetic vs the label tree",
    "kmeans": "k-means (k = #classes) on test features: NMI and ARI",
    "rankme": "effective rank of the train features",
    "layers": "(modifier) also evaluate every intermediate layer",
    "random": "(modifier) also run label metrics on permuted labels",
}


def layer_order(names):
  """Input to output: stem, stage1.., block1, block2, .., block10, rep.
  (Feature dicts come back from jit with sorted keys: block10 < block2.)"""
  def key(name):
    m = re.fullmatch(r"(.*?)(\d*)", name)
    return (name == "rep", name != "stem", m.group(1), int(m.group(2) or 0))
  return sorted(names, key=key)


def parse(names):
  """'a,b' or a sequence -> tuple of names; unknown names list valid ones."""
  if isinstance(names, str):
    names = [n.strip() for n in names.split(",") if n.strip()]
  bad = [n for n in names if n not in EVALS]
  if bad:
    raise ValueError(f"Unknown evaluation(s) {', '.join(bad)}. Valid: "
                     + "; ".join(f"{k} ({v})" for k, v in EVALS.items()))
  return tuple(names)


def _random_labels(y, levels, seed):
  """Permute the fine labels; coarser levels follow the tree, so the random
  labelling is a random tree-consistent assignment with the same sizes."""
  fine = np.asarray(y[levels[0]])
  perm = geometry.permute_labels(np.arange(len(fine)), seed)
  out = {levels[0]: fine[perm]}
  for lv in levels[1:]:
    out[lv] = hierarchy.parents_of(fine, y[lv], fine.max() + 1)[fine[perm]]
  return out


def run(names, train, test, *, levels=("label",), knn_k=(20,),
        knn_temperature=0.07, seed=0, probe_options=None):
  """Yields (name, value) for every requested evaluation (see module doc)."""
  names = parse(names)
  layers = layer_order(train["x"]) if "layers" in names else ["rep"]
  kinds = ["true"] + (["random"] if "random" in names else [])
  for layer in layers:
    xtr, xte = np.asarray(train["x"][layer]), np.asarray(test["x"][layer])
    if "rankme" in names:
      yield f"{layer}/-/-/rankme", geometry.rankme(xtr)
    for kind in kinds:
      if kind == "true":
        ytr, yte = train["y"], test["y"]
      else:
        ytr = _random_labels(train["y"], levels, seed + 1)
        yte = _random_labels(test["y"], levels, seed + 2)
      for lv in levels:
        a, b = np.asarray(ytr[lv]), np.asarray(yte[lv])
        c = geometry.num_classes_of(a, b)
        pre = f"{layer}/{lv}/{kind}/"
        if "linear" in names:
          r = probes.linear_probe(xtr, a, xte, b, **(probe_options or {}))
          yield pre + "linear_test", r["test_accuracy"]
          yield pre + "linear_train", r["train_accuracy"]
        if "knn" in names:
          acc = probes.knn_accuracy(xtr, a, xte, b, k=tuple(knn_k),
                                    temperature=knn_temperature,
                                    num_classes=c)
          for k, v in acc.items():
            yield pre + f"knn_k{k}", v
        if "ncc" in names:
          yield pre + "ncc_train", geometry.ncc_accuracy(
              xtr, a, xtr, a, num_classes=c)
          yield pre + "ncc_test", geometry.ncc_accuracy(
              xtr, a, xte, b, num_classes=c)
        if "cdnv" in names:
          yield pre + "cdnv_train", geometry.cdnv(xtr, a, num_classes=c)
          yield pre + "cdnv_test", geometry.cdnv(xte, b, num_classes=c)
        if "kmeans" in names:
          r = clustering.kmeans_scores(xte, b, seed=seed)
          yield pre + "kmeans_nmi", r["nmi"]
          yield pre + "kmeans_ari", r["ari"]
      if "hierarchy" in names and len(levels) > 1:
        r = hierarchy.hierarchy_rank_correlation(
            xtr, ytr[levels[0]], [ytr[lv] for lv in levels[1:]])
        for k, v in r.items():
          yield f"{layer}/tree/{kind}/{k}", v


def table(results):
  """Readable table: rows layer/level/labels, one column per metric."""
  rows, cols = {}, []
  for name, v in results.items():
    parts = name.split("/")
    if len(parts) != 4:
      continue
    row, col = "/".join(parts[:3]), parts[3]
    rows.setdefault(row, {})[col] = v
    if col not in cols:
      cols.append(col)
  if not rows:
    return ""
  w = max(len(r) for r in rows) + 2
  cw = {c: max(10, len(c) + 2) for c in cols}
  out = [f"{'':<{w}}" + "".join(f"{c:>{cw[c]}}" for c in cols)]
  for r, vals in rows.items():
    out.append(f"{r:<{w}}" + "".join(
        f"{vals[c]:>{cw[c]}.4f}" if c in vals else f"{'':>{cw[c]}}"
        for c in cols))
  return "\n".join(out)
