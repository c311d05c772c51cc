"""Tables and figures of ssljax.experiments.sag_vicreg's results.json.

The experiment (its command, runs, metrics and the files it writes) is
documented in ssljax.experiments.sag_vicreg, which runs the cells and calls
this module for results.md and WORKDIR/figures; notebooks/sag_vicreg.py
draws the same tables and charts from a results.json. Every function here
reads the results' dicts only (no training, no evaluation), so --replot
and the notebook take seconds.
"""

import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
from ssljax import files
from ssljax.data import hierarchical_shapes as hs
from ssljax.data import shapes_v2

# Every method the experiment can run, in the tables' and charts' order
# (a method's colour is its index).
METHODS = ("vicreg", "sag_vicreg", "simclr", "byol", "mveb", "ae",
           "barlow_twins", "nnclr", "swav", "dino", "ijepa")
NAMES = {"random_init": "random init", "vicreg": "VICReg",
         "sag_vicreg": "SAG-VICReg", "simclr": "SimCLR", "byol": "BYOL",
         "mveb": "MVEB", "ae": "AE", "barlow_twins": "Barlow Twins",
         "nnclr": "NNCLR", "swav": "SwAV", "dino": "DINO", "ijepa": "I-JEPA"}
LEVELS = ("label", "coarse_label", "super_label")
LEVEL_NAMES = {"label": "fine", "coarse_label": "family",
               "super_label": "super"}


# ----------------------------------------------------------------------------
# Metrics shown in the tables and charts: (column, [keys]); one key per
# level for the per-level metrics. "true" is replaced by "unseen" (and the
# label-free "-/-" by "-/unseen") for the held-out set.
# ----------------------------------------------------------------------------
def metrics(group):
  """[(table, column, slug, [result keys])] of group "full" or "unseen"."""
  kind = "true" if group == "full" else "unseen"
  free = "-" if group == "full" else "unseen"
  levels = LEVELS if group == "full" else LEVELS[:2]
  fine = f"rep/label/{kind}/"
  tree = f"rep/tree/{kind}/"
  return [
      ("local", "linear", "linear", [fine + "linear_test"]),
      ("local", "kNN k=20", "knn_k20", [fine + "knn_k20"]),
      ("local", "kNN k=200", "knn_k200", [fine + "knn_k200"]),
      ("local", "NCC", "ncc", [fine + "ncc_test"]),
      ("global", "Spearman", "spearman", [tree + "spearman"]),
      ("global", "Kendall", "kendall", [tree + "kendall"]),
      ("global", "cophenetic (tree)", "cophenetic_tree",
       [tree + "tree_cophenetic_correlation"]),
      ("global", "cophenetic (centroids)", "cophenetic_centroids",
       [tree + "cophenetic_correlation"]),
      ("global", "SGS", "sgs", [f"rep/-/{free}/spectral_gs"]),
      ("clustering", "ARI k-means", "ari_kmeans",
       [f"rep/{lv}/{kind}/kmeans_ari" for lv in levels]),
      ("clustering", "ARI agglomerative", "ari_agglomerative",
       [f"rep/{lv}/{kind}/agglo_ari" for lv in levels]),
  ]


def _level_of(key):
  return LEVEL_NAMES.get(key.split("/")[1], key.split("/")[1])


# ----------------------------------------------------------------------------
# Aggregation.
# ----------------------------------------------------------------------------
def aggregate(runs):
  """{"GROUP/METHOD/seedS": {"metrics": {key: value}}} -> {GROUP: {METHOD:
  {key: {"mean", "std", "n"}}}} over the seeds that have the key: mean,
  sample standard deviation (ddof = 1; None for a single seed) and the
  number of seeds. Runs without metrics (failed) are left out."""
  values = {}
  for name, run in runs.items():
    group, method, _ = name.split("/")
    for key, v in run.get("metrics", {}).items():
      values.setdefault(group, {}).setdefault(method, {}).setdefault(
          key, []).append(float(v))
  return {g: {m: {k: {"mean": float(np.mean(v)),
                      "std": float(np.std(v, ddof=1)) if len(v) > 1 else None,
                      "n": len(v)}
                  for k, v in sorted(keys.items())}
              for m, keys in ms.items()}
          for g, ms in values.items()}


def _order(methods):
  return sorted(methods, key=lambda m: (m != "random_init",
                                        METHODS.index(m) if m in METHODS
                                        else len(METHODS), m))


def _cell(stat):
  if stat is None:
    return "–"
  if stat["std"] is None:
    return f"{stat['mean']:.3f}"
  return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def markdown(results):
  s, summary = results["setup"], results["summary"]
  steps = s["train_steps"] or "10 epochs (390)"
  lines = [
      "# SAG-VICReg vs VICReg: global semantics", "",
      f"`python -m ssljax.experiments.sag_vicreg --workdir=...`; dataset "
      f"{s['dataset']}, configs/compare_cpu.py, {steps} steps, batch "
      f"{s['batch_size'] or 256}"
      + (f", every run with {s['set']}" if s.get("set") else "")
      + "; mean ± std over seeds (n in the last "
      f"column). Unseen: pretrained without {s['holdout_key']} classes "
      f"{s['holdout_classes']}, scored on those classes alone."]
  for group in ("full", "unseen"):
    if group not in summary:
      continue
    ms = summary[group]
    for table in ("local", "global", "clustering"):
      cols = [(c if len(keys) == 1 else f"{c} {_level_of(k)}", k)
              for t, c, _, keys in metrics(group) if t == table
              for k in keys]
      heads = [c for c, _ in cols]
      lines += ["", f"**{group}: {table}**", "",
                "| method | " + " | ".join(heads) + " | seeds |",
                "|---" * (len(cols) + 2) + "|"]
      for m in _order(ms):
        n = max((v["n"] for v in ms[m].values()), default=0)
        lines.append(f"| {NAMES.get(m, m)} | " + " | ".join(
            _cell(ms[m].get(k)) for _, k in cols) + f" | {n} |")
  failed = [n for n, r in results["runs"].items() if "error" in r]
  if failed:
    lines += ["", "Failed (non-finite, left out): " + ", ".join(failed)]
  minutes = [r["train_minutes"] for r in results["runs"].values()
             if "train_minutes" in r]
  if minutes:
    lines += ["", f"{len(minutes)} training runs, {np.mean(minutes):.1f} min "
              f"each on average, {sum(minutes):.0f} min in total."]
  return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------
# Figures.
# ----------------------------------------------------------------------------
def bar_charts(summary, out_dir):
  """One PNG per metric and group: a bar per method (mean, ± std error
  bar), grouped by level for the per-level metrics."""
  paths = []
  for group, ms in summary.items():
    n = len(ms)
    for _, col, slug, keys in metrics(group):
      keys = present(ms, keys)
      if not keys:
        continue
      fig, ax = plt.subplots(figsize=(
          (2.5 + 0.7 * n) if len(keys) == 1
          else min(12.0, 3.5 + 0.4 * n * len(keys)), 3.6))
      draw_bars(ax, ms, group, col, keys)
      paths.append(_save(fig, out_dir / f"{group}_{slug}.png"))
  return paths


def present(ms, keys):
  """The result keys of `keys` that some method of `ms` (summary[group])
  has."""
  return [k for k in keys if any(k in v for v in ms.values())]


def draw_bars(ax, ms, group, col, keys, legend=True):
  """Metric `col` of `group` on `ax`: a bar per method of `ms`
  (summary[group]; mean, ± std error bar), grouped by level when `keys`
  holds one key per level (the legend then names the methods)."""
  order = _order(ms)
  seeds = max(v["n"] for m in order for v in ms[m].values())
  single = len(keys) == 1
  width = 0.8 if single else 0.8 / len(order)
  for i, m in enumerate(order):
    st = [ms[m].get(k) for k in keys]
    xs = (np.array([i]) if single else np.arange(len(keys))
          + (i - (len(order) - 1) / 2) * width)
    ax.bar(xs, [v["mean"] if v else np.nan for v in st], width,
           yerr=[(v["std"] or 0.0) if v else 0.0 for v in st],
           capsize=3, label=NAMES.get(m, m), color=_color(m),
           edgecolor="0.3" if m == "random_init" else None,
           hatch="//" if m == "random_init" else None)
  if single:
    ax.set_xticks(np.arange(len(order)),
                  [NAMES.get(m, m) for m in order], rotation=30,
                  ha="right")
  else:
    ax.set_xticks(np.arange(len(keys)), [_level_of(k) for k in keys])
    if legend:
      ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
  ax.axhline(0, color="k", lw=0.5)
  where = "all classes" if group == "full" else "held-out classes"
  ax.set_title(f"{col}, {where}\n(mean ± std over {seeds} seed"
               f"{'s' if seeds > 1 else ''})", fontsize=9)


def _color(method):
  """The same colour for a method in every chart."""
  if method == "random_init":
    return "0.75"
  i = METHODS.index(method) if method in METHODS else len(METHODS)
  return plt.cm.tab10(i % 10)


def pca_2d(mean_cd):
  """Rows projected on their top two principal directions, and the share
  of the variance each holds."""
  x = np.asarray(mean_cd, np.float64)
  x = x - x.mean(0)
  u, s, _ = np.linalg.svd(x, full_matrices=False)
  share = s ** 2 / max(float((s ** 2).sum()), 1e-30)
  pad = max(0, 2 - u.shape[1])
  return (np.pad(u[:, :2] * s[:2], ((0, 0), (0, pad))),
          np.pad(share[:2], (0, pad)))


def fine_names(dataset):
  """Fine-class names of the hierarchical_shapes version `dataset` names."""
  base = str(dataset).split("/")[0].split(":")[0]
  return (shapes_v2.FINE_NAMES if base == "hierarchical_shapes_v2"
          else hs.FINE_NAMES)


def centroid_figure(runs, group, holdout=None, names=hs.FINE_NAMES):
  """The figure of VICReg and SAG-VICReg (those run) side by side, lowest
  seed; None when neither has centroids in `group`. holdout: (label key,
  class ids) drawn hollow."""
  panels = []
  for m in ("vicreg", "sag_vicreg"):
    names = sorted((n for n in runs if n.startswith(f"{group}/{m}/seed")
                    and "centroids" in runs[n]),
                   key=lambda n: int(n.rsplit("seed", 1)[1]))
    if names:
      panels.append((m, names[0]))
  if not panels:
    return None
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1.5,
                                                    4.6),
                           squeeze=False)
  colors = plt.cm.tab10(np.arange(10))
  for ax, (m, name) in zip(axes[0], panels):
    c = runs[name]["centroids"]
    xy, share = pca_2d(c["mean"])
    for (x, y), f, co, su in zip(xy, c["fine"], c["coarse"], c["super"]):
      unseen = holdout is not None and (
          {"label": f, "coarse_label": co, "super_label": su}[holdout[0]]
          in holdout[1])
      color = colors[co % 10]
      ax.scatter(x, y, s=70, marker="o" if su == 0 else "s",
                 facecolors="none" if unseen else color, edgecolors=color,
                 linewidths=1.5)
      variant = names[f].split("_")[1] if f < len(names) else f
      ax.annotate(str(variant)[:3], (x, y), fontsize=6,
                  textcoords="offset points", xytext=(4, 3))
    for co in sorted(set(c["coarse"])):
      ax.scatter([], [], color=colors[co % 10], label=(
          hs.FAMILIES[co] if co < hs.NUM_COARSE else str(co)))
    ax.set(title=f"{NAMES[m]} ({name.split('/')[-1]})",
           xlabel=f"PC1 ({share[0]:.0%})", ylabel=f"PC2 ({share[1]:.0%})")
  axes[0][-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1),
                     title="family\n(○ round, □ angular;\nlabel: the variant's "
                     "\nfirst letters)", title_fontsize=7)
  fig.suptitle("Fine-class centroids of the test representation (PCA)"
               + ("; hollow: held out of pretraining" if holdout else ""),
               fontsize=9)
  return fig


def plot(results, out_dir):
  paths = bar_charts(results["summary"], out_dir)
  s = results["setup"]
  for group, holdout in (("full", None), ("unseen", (
      s["holdout_key"], s["holdout_classes"]))):
    fig = centroid_figure(results["runs"], group, holdout,
                          fine_names(s.get("dataset")))
    if fig:
      suffix = "" if group == "full" else "_unseen"
      paths.append(_save(fig, out_dir / f"centroids{suffix}.png"))
  return paths


def _save(fig, path):
  fig.tight_layout()
  out = files.save_figure(fig, path)
  plt.close(fig)
  return out
