"""SAG-VICReg vs VICReg and the other methods of ssljax, on a CPU.

  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg --seeds=0 \
      --methods=vicreg,sag_vicreg --unseen_methods=   # a subset
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_vicreg --replot
  python -m ssljax.experiments.sag_vicreg --workdir=/tmp/sag_lars \
      --set=optimizer.name=lars,optimizer.base_lr=0.3,optimizer.momentum=0.9,\
optimizer.trust_coefficient=0.02,optimizer.weight_decay=1e-4  # one recipe

Every run is configs/compare_cpu.py:METHOD,hierarchical_shapes (10 epochs =
390 steps at batch 256 on the 10k train images; width-8 ResNet-18, the same
augmentations and optimizer for every method) with cfg.seed = the seed; the
seed also changes the data order and augmentations. Two sets of runs:

  full    every --methods × --seeds, pretrained on all 24 fine classes;
          evaluated on the whole test split.
  unseen  every --unseen_methods × --seeds, pretrained with the classes
          --holdout_classes (of label key --holdout_key) removed from the
          training stream (data.holdout_*), for as many steps as a full run
          (the same compute; the smaller stream is seen more often);
          evaluated with the `unseen` modifier: the held-out classes alone
          (their train images fit the probes, their test images score).
          The LR warm-up (half an epoch) is then 13 steps instead of 19.

Why separate runs: the full runs' metrics must be those of a model that saw
every class (comparable with compare_methods and the paper's
in-distribution claims); a held-out run's "seen" subset would be a 16-class
problem on 2/3 of the data, another experiment. Why unseen runs for VICReg
and SAG-VICReg only by default: the claim under test (better on unseen
clusters) is SAG-VICReg's against VICReg; pass --unseen_methods to add the
others (3 runs each).

Held-out classes (default): whole families 2 and 5 (clover and cross, the
third family of each super-family; `--holdout_key=coarse_label
--holdout_classes=2,5`): 8 fine classes, the whole branch below each family
never seen, so the test is of new clusters, not of new details of known
silhouettes. Two families rather than one, one per super-family, so that
the held-out set keeps a tree (8 fine classes in 2 families) and the
hierarchy metrics and the family-level ARI are defined on it; on it the
super-family partition equals the family partition, so the unseen tables
leave the super level out (results.json has it).

Metrics, on the final checkpoint's representation (ssljax.evals names in
brackets): linear probe, kNN (k = 20, 200, T = 0.07) and NCC on the 24
fine classes, fit on train and scored on test [linear, knn, ncc]; Spearman,
Kendall τ-b and the cophenetic correlations of the fine-class centroids of
the train features against the three-level tree [hierarchy,
coarse_label_keys = coarse_label, super_label]; ARI of k-means and of an
average-linkage cut of the test features at each level's number of
classes, for each level [kmeans, agglomerative]; the label-free spectral
global structure SGS of the test features [spectral]. Unseen: the same on
the held-out classes alone. The random initialization (step 0; the
encoder's init is the same for every method at a seed) is evaluated once
per seed and set: row "random init". Evaluation randomness (k-means
starts, subsamples) is fixed (eval.random_seed = 0), so the spread over
seeds is that of training.

Default size: 10 methods × 3 seeds + 2 × 3 unseen = 36 training runs of
4–7 min on 2 idle CPU cores (AE 4.3, MVEB ≈ 6.8, the others ≈ 6), plus the
evaluations: under 1 min per full run and ≈ 2 min per unseen run (probes
on three subsets: all, unseen, seen), 6 random-init ones: ≈ 4.5 hours in
all. Cells run seed-major (every method at seed 0
first), each saved when done: an interrupted run resumes (finished cells
are read back from WORKDIR/results.json; a cell's training resumes from its
checkpoint).

Writes:
  WORKDIR/runs/{full,unseen}/METHOD/seedS     the training workdirs
  WORKDIR/results.json  {"setup", "runs": {"full/vicreg/seed0": {"metrics":
                        {ssljax.evals name: value}, "train_minutes",
                        "eval_minutes", "centroids"}}, "summary": {"full":
                        {method: {metric: {"mean", "std", "n"}}}, "unseen":
                        ...}} (std over seeds with ddof = 1; null for n = 1)
  WORKDIR/results.md    markdown tables, mean ± std over seeds
  WORKDIR/figures/{full,unseen}_METRIC.png  a bar chart per metric, mean
                        with ± std error bars (per-level metrics grouped)
  WORKDIR/figures/centroids{,_unseen}.png   2-D PCA of the fine-class
                        centroids (test features), coloured by family,
                        marker by super-family, VICReg and SAG-VICReg side
                        by side (the lowest seed); in the unseen figure
                        held-out classes are hollow
"""

import json
import math
import time

from absl import app
from absl import flags
from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import ssljax.data
from ssljax import cli
from ssljax import eval_main
from ssljax import experiments
from ssljax import files
from ssljax import train
from ssljax.data import hierarchical_shapes as hs
from ssljax.data import shapes_v2

METHODS = ("vicreg", "sag_vicreg", "simclr", "byol", "mveb", "ae",
           "barlow_twins", "nnclr", "swav", "dino", "ijepa")
# The defaults of --unseen_methods and --seeds: the notebook names the cells
# of a default run that a results.json lacks.
UNSEEN_METHODS = ("vicreg", "sag_vicreg")
SEEDS = (0, 1, 2)
NAMES = {"random_init": "random init", "vicreg": "VICReg",
         "sag_vicreg": "SAG-VICReg", "simclr": "SimCLR", "byol": "BYOL",
         "mveb": "MVEB", "ae": "AE", "barlow_twins": "Barlow Twins",
         "nnclr": "NNCLR", "swav": "SwAV", "dino": "DINO", "ijepa": "I-JEPA"}
LEVELS = ("label", "coarse_label", "super_label")
LEVEL_NAMES = {"label": "fine", "coarse_label": "family",
               "super_label": "super"}
EVALS = "linear,knn,ncc,hierarchy,kmeans,agglomerative,spectral"


def _define_flags():
  # Defined when run, so tests can import the module (and its aggregate())
  # beside the other experiments, which define --workdir too.
  flags.DEFINE_string("workdir", None, "Output directory.")
  flags.DEFINE_list("methods", list(METHODS), "Methods of the full runs.")
  flags.DEFINE_list("unseen_methods", list(UNSEEN_METHODS),
                    "Methods of the held-out-class runs (may be empty).")
  flags.DEFINE_list("seeds", [str(s) for s in SEEDS], "Seeds (cfg.seed).")
  flags.DEFINE_string("dataset", "hierarchical_shapes", "TFDS name (a "
                      "config of hierarchical_shapes, e.g. "
                      "hierarchical_shapes/32_small for smoke tests; "
                      "hierarchical_shapes_v2 for version 2.0.0).")
  flags.DEFINE_enum("holdout_key", "coarse_label", list(LEVELS),
                    "Label key of --holdout_classes.")
  flags.DEFINE_list("holdout_classes", ["2", "5"], "Classes held out of the "
                    "unseen runs' pretraining (default: families clover and "
                    "cross).")
  flags.DEFINE_integer("train_steps", None, "Override the runs' length (for "
                       "smoke tests; default: the config's 10 epochs).")
  flags.DEFINE_integer("batch_size", None, "Override the runs' batch size.")
  flags.DEFINE_list("set", [], "Dotted config overrides KEY=VALUE applied "
                    "to every run (one recipe change for all methods, e.g. "
                    "the optimizer); recorded in the setup.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.DEFINE_bool("replot", False, "Only rewrite results.md and the "
                    "figures from results.json.")
  flags.mark_flags_as_required(["workdir"])


FLAGS = flags.FLAGS


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
# Runs.
# ----------------------------------------------------------------------------
def compare_cpu(method, dataset):
  return experiments.load_config("compare_cpu",
                                 f"{method},{dataset.split('/')[0]}")


def setup_of():
  """What the runs depend on: a resumed workdir must match it."""
  setup = {"dataset": FLAGS.dataset, "train_steps": FLAGS.train_steps,
           "batch_size": FLAGS.batch_size, "holdout_key": FLAGS.holdout_key,
           "holdout_classes": [int(c) for c in FLAGS.holdout_classes]}
  common = experiments.parse_overrides(FLAGS.set)
  if common:  # absent when empty: workdirs written before --set resume
    setup["set"] = common
  return setup


def run_config(method, seed, group, num_train):
  cfg = compare_cpu(method, FLAGS.dataset)
  experiments.apply_overrides(cfg, experiments.parse_overrides(FLAGS.set))
  cfg.seed = seed
  cfg.data.dataset = FLAGS.dataset
  cfg.data.data_dir = FLAGS.data_dir
  if FLAGS.batch_size:
    cfg.batch_size = FLAGS.batch_size
  full_steps = FLAGS.train_steps or int(cfg.num_epochs * (
      num_train // cfg.batch_size))
  if FLAGS.train_steps:
    cfg.num_steps = FLAGS.train_steps
  cfg.eval.coarse_label_keys = LEVELS[1:]
  cfg.eval.cli = EVALS
  if group == "unseen":
    cfg.data.holdout_key = FLAGS.holdout_key
    cfg.data.holdout_classes = tuple(int(c) for c in FLAGS.holdout_classes)
    cfg.eval.cli = EVALS + ",unseen"
    cfg.num_steps = full_steps  # the same steps as a full run
  return cfg


def centroids(te):
  """Fine-class centroids of the test representation, with each class's
  family and super-family."""
  x, y = np.asarray(te["x"]["rep"], np.float64), te["y"]
  fine = np.unique(np.asarray(y["label"]))
  first = [int(np.flatnonzero(np.asarray(y["label"]) == c)[0]) for c in fine]
  return {"fine": fine.tolist(),
          "coarse": [int(np.asarray(y["coarse_label"])[i]) for i in first],
          "super": [int(np.asarray(y["super_label"])[i]) for i in first],
          "mean": [x[np.asarray(y["label"]) == c].mean(0).round(5).tolist()
                   for c in fine]}


def evaluate(workdir, step=None):
  """(metrics, centroids) of a workdir's checkpoint (step 0: random init),
  with the evaluations of its config's eval.cli."""
  cfg, variables, evaluator, _ = eval_main.load(workdir, step)
  tr, te = evaluator.features(variables)
  res = evaluator.run(variables, cfg.eval.cli, (tr, te))
  res.pop("online_probe_accuracy", None)
  return {k: float(v) for k, v in res.items()}, centroids(te)


def cells(methods, unseen_methods, seeds):
  """(name, group, method, seed), seed-major; random init after the runs
  whose workdirs it reads."""
  out = []
  for s in seeds:
    out += [(f"full/{m}/seed{s}", "full", m, s) for m in methods]
    out += [(f"unseen/{m}/seed{s}", "unseen", m, s) for m in unseen_methods]
    if methods:
      out.append((f"full/random_init/seed{s}", "full", "random_init", s))
    if unseen_methods:
      out.append((f"unseen/random_init/seed{s}", "unseen", "random_init", s))
  return out


def run_cell(group, method, seed, methods, unseen_methods, num_train):
  root = epath.Path(FLAGS.workdir) / "runs" / group
  if method == "random_init":  # step 0 of the group's first method
    first = (methods if group == "full" else unseen_methods)[0]
    t = time.time()
    m, c = evaluate(str(root / first / f"seed{seed}"), 0)
    return {"metrics": m, "centroids": c,
            "eval_minutes": (time.time() - t) / 60}
  wd = str(root / method / f"seed{seed}")
  t = time.time()
  try:
    train.train_and_evaluate(run_config(method, seed, group, num_train), wd)
  except train.NonFiniteError as e:  # recorded; the other cells go on
    return {"error": str(e), "train_minutes": (time.time() - t) / 60}
  minutes = (time.time() - t) / 60
  t = time.time()
  m, c = evaluate(wd)
  return {"metrics": m, "centroids": c, "train_minutes": minutes,
          "eval_minutes": (time.time() - t) / 60}


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


# ----------------------------------------------------------------------------
# Main.
# ----------------------------------------------------------------------------
def write(results, out):
  results["summary"] = aggregate(results["runs"])
  files.write_atomic(out / "results.json", json.dumps(results, indent=1))


def main(argv):
  del argv
  cli.quiet_library_logs(FLAGS.verbosity)
  bad = sorted(set(FLAGS.methods + FLAGS.unseen_methods) - set(METHODS))
  if bad:
    raise app.UsageError(f"Unknown methods {bad}; valid: {METHODS}.")
  if FLAGS.dataset.split("/")[0].split(":")[0] not in (
      "hierarchical_shapes", "hierarchical_shapes_v2"):
    raise app.UsageError("--dataset must be hierarchical_shapes (3.0.0), "
                         "hierarchical_shapes_v2 (2.0.0) or one of their "
                         "configs: the metrics need their three levels.")
  out = epath.Path(FLAGS.workdir)
  path = out / "results.json"
  results = json.loads(path.read_text()) if path.exists() else {}
  if FLAGS.replot and not results:
    raise app.UsageError(f"--replot: no {path}.")
  if not FLAGS.replot:
    try:
      setup = setup_of()
      for m in set(FLAGS.methods + FLAGS.unseen_methods):  # before training
        experiments.apply_overrides(compare_cpu(m, FLAGS.dataset),
                                    setup.get("set", {}))
    except (ValueError, KeyError, TypeError) as e:
      raise app.UsageError(f"--set: {e}") from e
    if results.get("setup", setup) != setup:
      raise app.UsageError(
          f"{path} was written with {results['setup']}, not {setup}: use "
          "another --workdir or the same flags.")
    results.setdefault("setup", setup)
    runs = results.setdefault("runs", {})
    seeds = [int(s) for s in FLAGS.seeds]
    num_train = len(ssljax.data.load_source(FLAGS.dataset, "train",
                                            FLAGS.data_dir))
    todo = [c for c in cells(FLAGS.methods, FLAGS.unseen_methods, seeds)
            if c[0] not in runs]
    for i, (name, group, method, seed) in enumerate(todo):
      print(f"[{i + 1}/{len(todo)}] {name}", flush=True)
      runs[name] = run_cell(group, method, seed, FLAGS.methods,
                            FLAGS.unseen_methods, num_train)
      m = runs[name].get("metrics", {})
      k = "true" if group == "full" else "unseen"
      print(f"{name}: " + (runs[name].get("error") or ", ".join(
          f"{c} {m[key]:.3f}" for c, key in (
              ("linear", f"rep/label/{k}/linear_test"),
              ("kNN", f"rep/label/{k}/knn_k20"),
              ("Spearman", f"rep/tree/{k}/spearman"))
          if key in m and math.isfinite(m[key]))), flush=True)
      write(results, out)  # after every cell
  write(results, out)
  table = markdown(results)
  files.write_atomic(out / "results.md", table)
  paths = plot(results, out / "figures")
  print(table)
  print("\n".join(["written:", str(path), str(out / "results.md")] + paths))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
