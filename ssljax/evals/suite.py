"""Run a named subset of evaluations over layers, label levels and controls.

    for name, value in suite.run("ncc,cdnv,layers,random", train, test,
                                 levels=("label", "coarse_label")):
      ...

`train` / `test` are {"x": {layer: [n, d]}, "y": {label_key: [n]}} (as from
`monitor.extract`). The representation is layer "rep"; with "layers" every
other entry of "x" (GAP'd ResNet stages / ViT blocks) is evaluated too.
`levels` orders the label keys from fine to coarse; the first is the class.

Names are "layer/level/labels/metric": labels is "true", "random" (the
random-label control, with "random"), or "unseen" / "seen" (with "unseen":
only the examples of the classes held out of pretraining, or only the
others; `holdout`), level is a label key, "tree" for the hierarchy metrics
and "-" for the label-free RankMe and spectral metrics (whose labels part is
"-" on all test features, "unseen"/"seen" on those subsets). Label metrics
are skipped at a level where a subset has fewer than 2 classes.
"""

import re

import numpy as np

from ssljax.evals import clustering
from ssljax.evals import geometry
from ssljax.evals import hierarchy
from ssljax.evals import probes
from ssljax.evals import spectral

EVALS = {
    "linear": "offline linear probe: test and train accuracy",
    "knn": "weighted cosine kNN accuracy for each k",
    "ncc": "nearest-class-centre accuracy, train and test (train means)",
    "cdnv": "class-distance normalized variance of train and test features",
    "hierarchy": "Spearman / Kendall / cophenetic vs the label tree",
    "kmeans": "k-means (k = #classes) on test features: NMI, ARI, RI",
    "agglomerative": "average-linkage dendrogram of test features cut at "
                     "k = #classes of each level: NMI, ARI, RI",
    "rankme": "effective rank of the train features",
    "classify": "top-1 / top-5 of the model's own classifier (downstream "
                "runs: their \"logits\")",
    "spectral": "label-free spectral global structure (SGS) of the test "
                "features",
    "layers": "(modifier) also evaluate every intermediate layer",
    "random": "(modifier) also run label metrics on permuted labels",
    "unseen": "(modifier) also run them on the classes held out of "
              "pretraining (data.holdout_classes) and on the others",
}
LABEL_FREE = ("rankme", "spectral")
CLASSIFIER = "logits"  # the feature a classifier's represent() adds


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


def _subset(split, keep):
  return {"x": {k: np.asarray(v)[keep] for k, v in split["x"].items()},
          "y": {k: np.asarray(v)[keep] for k, v in split["y"].items()}}


def holdout_subsets(train, test, holdout):
  """{"unseen": (train, test) restricted to the held-out classes, "seen":
  to the others}; holdout = (label key, class ids)."""
  key, classes = holdout
  if not len(classes):
    raise ValueError("The 'unseen' evaluation needs the classes held out of "
                     "pretraining: set data.holdout_classes.")
  if key not in train["y"]:
    raise ValueError(f"Held-out classes are given for label key {key!r}, "
                     f"but the features carry only {', '.join(train['y'])}.")
  inside = [np.isin(np.asarray(s["y"][key]), np.asarray(classes))
            for s in (train, test)]
  return {"unseen": tuple(_subset(s, m) for s, m in zip((train, test),
                                                        inside)),
          "seen": tuple(_subset(s, ~m) for s, m in zip((train, test),
                                                       inside))}


def run(names, train, test, *, levels=("label",), knn_k=(20,),
        knn_temperature=0.07, seed=0, probe_options=None, holdout=None):
  """Yields (name, value) for every requested evaluation (see module doc).
  holdout: (label key, class ids held out of pretraining), for "unseen"."""
  names = parse(names)
  if "classify" in names and CLASSIFIER not in test["x"]:
    raise ValueError("The 'classify' evaluation needs a model with a "
                     "classifier head (method downstream); this one has "
                     "none.")
  layers = [l for l in layer_order(train["x"]) if l != CLASSIFIER] if (
      "layers" in names) else ["rep"]
  splits = {"true": (train, test)}
  if "random" in names:
    splits["random"] = (
        dict(train, y=_random_labels(train["y"], levels, seed + 1)),
        dict(test, y=_random_labels(test["y"], levels, seed + 2)))
  if "unseen" in names:
    splits.update(holdout_subsets(train, test, holdout or ("label", ())))
  for layer in layers:
    for kind, (tr, te) in splits.items():
      if kind != "random":  # the label-free metrics ignore labels
        tag = "-" if kind == "true" else kind
        if "rankme" in names:
          yield f"{layer}/-/{tag}/rankme", geometry.rankme(tr["x"][layer])
        if "spectral" in names:
          yield f"{layer}/-/{tag}/spectral_gs", (
              spectral.spectral_global_structure(te["x"][layer],
                                                 seed=seed)["sgs"])
      yield from _label_metrics(names, layer, kind, tr, te, levels, knn_k,
                                knn_temperature, seed, probe_options)
  if "classify" in names:
    for kind, (_, te) in splits.items():
      if kind != "random":
        yield from _classify(te, levels[0], kind)


def _classify(te, level, kind):
  """Top-1 / top-5 accuracy of the classifier's logits on the test split
  (top-k over min(k, #classes) classes)."""
  logits, y = np.asarray(te["x"][CLASSIFIER]), np.asarray(te["y"][level])
  if not len(y):
    return
  ranked = np.argsort(-logits, axis=1)
  for k in (1, 5):
    hit = (ranked[:, :min(k, logits.shape[1])] == y[:, None]).any(axis=1)
    yield f"{CLASSIFIER}/{level}/{kind}/top{k}", float(hit.mean())


def _label_metrics(names, layer, kind, tr, te, levels, knn_k,
                   knn_temperature, seed, probe_options):
  xtr, xte = np.asarray(tr["x"][layer]), np.asarray(te["x"][layer])
  ytr, yte = tr["y"], te["y"]
  # A level where this subset has a single class has nothing to score.
  lvs = [lv for lv in levels if len(np.unique(ytr[lv])) > 1
         and len(np.unique(yte[lv])) > 1]
  agglo = {}
  if "agglomerative" in names and lvs:
    agglo = dict(zip(lvs, clustering.agglomerative_scores(
        xte, [yte[lv] for lv in lvs], seed=seed)))
  for lv in lvs:
    a, b = np.asarray(ytr[lv]), np.asarray(yte[lv])
    c = geometry.num_classes_of(a, b)
    pre = f"{layer}/{lv}/{kind}/"
    if "linear" in names:
      r = probes.linear_probe(xtr, a, xte, b, **(probe_options or {}))
      yield pre + "linear_test", r["test_accuracy"]
      yield pre + "linear_train", r["train_accuracy"]
    if "knn" in names:
      acc = probes.knn_accuracy(xtr, a, xte, b, k=tuple(knn_k),
                                temperature=knn_temperature, num_classes=c)
      for k, v in acc.items():
        yield pre + f"knn_k{k}", v
    if "ncc" in names:
      yield pre + "ncc_train", geometry.ncc_accuracy(xtr, a, xtr, a,
                                                     num_classes=c)
      yield pre + "ncc_test", geometry.ncc_accuracy(xtr, a, xte, b,
                                                    num_classes=c)
    if "cdnv" in names:
      yield pre + "cdnv_train", geometry.cdnv(xtr, a, num_classes=c)
      yield pre + "cdnv_test", geometry.cdnv(xte, b, num_classes=c)
    if "kmeans" in names:
      r = clustering.kmeans_scores(xte, b, seed=seed)
      for k in ("nmi", "ari", "ri"):
        yield pre + f"kmeans_{k}", r[k]
    if lv in agglo:
      for k in ("nmi", "ari", "ri"):
        yield pre + f"agglo_{k}", agglo[lv][k]
  if ("hierarchy" in names and len(lvs) > 1 and lvs[0] == levels[0]):
    r = hierarchy.hierarchy_rank_correlation(
        xtr, ytr[levels[0]], [ytr[lv] for lv in lvs[1:]])
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
