# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # SAG-VICReg vs VICReg: global semantics and unseen classes
#
# SAG-VICReg (Simai, Talmon, Shaham, arXiv 2506.18104) adds to VICReg's
# invariance term positive pairs drawn by a random walk on a similarity
# graph of the batch. The paper claims that it
# 1. learns better **global semantics** (class hierarchy, clustering) at a
#    local accuracy (linear probe, kNN) similar to VICReg's, and
# 2. generalizes better to **clusters unseen** in pretraining.
#
# `python -m ssljax.experiments.sag_vicreg --workdir=W` tests both on
# `hierarchical_shapes` (24 fine classes, 6 families, 2 super-families):
# VICReg, SAG-VICReg, SimCLR, BYOL, MVEB and AE pretrained on every class
# (group *full*), VICReg and SAG-VICReg pretrained with two families held
# out and scored on those alone (group *unseen*), each at seeds 0, 1, 2,
# plus the random initialization; `W/results.json` holds every cell's
# metrics and class centroids. This notebook reads only that file (seconds).
# Set `WORKDIR` (the workdir or its results.json) or `SSLJAX_SAG`; a run
# still going is read as far as it got.
#
# The committed outputs are from the comparison under LARS on
# `hierarchical_shapes` 3.0.0 (VICReg, SAG-VICReg, SimCLR, BYOL, MVEB at
# seeds 0, 1, 2 on all classes, VICReg and SAG-VICReg at seeds 0, 1, 2
# with two families held out; every run with
# `--set=optimizer.name=lars,...`, the optimizer chosen on the validation
# split), reported in docs/results/optimizer_v3.md, on this repository's
# 2-core CPU; section 1 says which cells it had.
# docs/sag_vicreg.md is the experiment's write-up.

# %% tags=["parameters"]
import os

WORKDIR = os.environ.get("SSLJAX_SAG", "/tmp/sag_vicreg")

# %%
# %matplotlib inline
import math

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ssljax import results
from ssljax.experiments import sag_vicreg as sag
from ssljax.experiments import sag_vicreg_report as report

plt.rcParams["figure.dpi"] = 80  # keeps the committed outputs small
res = results.experiment(WORKDIR)
runs, setup = res["runs"], res["setup"]
seeds = sorted(set(sag.SEEDS) | {int(n.rsplit("seed", 1)[1]) for n in runs})
print(f"setup {setup}")


def show(fig):
  # Importing the experiment selects matplotlib's Agg backend (it writes
  # files), which stops the inline backend from drawing open figures.
  fig.tight_layout()
  display(fig)
  plt.close(fig)


def keys_of(group, wanted):
  """[(label, result key)] of report.metrics(group) for (slug, level index)."""
  by_slug = {slug: (col, keys) for _, col, slug, keys in report.metrics(group)}
  out = []
  for slug, i in wanted:
    col, keys = by_slug[slug]
    level = report.LEVEL_NAMES[report.LEVELS[i]]
    out.append((col if len(keys) == 1 else f"{col} {level}", keys[i]))
  return out


def paired(group):
  """{seed: (VICReg metrics, SAG-VICReg metrics)} at the seeds both have."""
  get = lambda m, s: runs.get(f"{group}/{m}/seed{s}", {}).get("metrics")
  return {s: (get("vicreg", s), get("sag_vicreg", s)) for s in seeds
          if get("vicreg", s) and get("sag_vicreg", s)}


# %% [markdown]
# ## 1. Which cells are done
# Against the default run (every method at seeds 0, 1, 2); ✓ done, ✗ failed
# (non-finite loss: left out of every table), · not run yet.

# %%
default = [c[0] for c in sag.cells(report.METHODS, sag.UNSEEN_METHODS,
                                   sag.SEEDS)]
names = list(dict.fromkeys(default + list(runs)))
mark = lambda n: ("·" if n not in runs else "✗" if "error" in runs[n]
                  else "✓")
rows = ["| group | method | " + " | ".join(f"seed {s}" for s in seeds) + " |",
        "|---" * (2 + len(seeds)) + "|"]
for gm in sorted(dict.fromkeys(n.rsplit("/", 1)[0] for n in names),
                 key=lambda gm: not gm.startswith("full/")):
  group, method = gm.split("/")
  rows.append(f"| {group} | {report.NAMES.get(method, method)} | " + " | ".join(
      mark(f"{gm}/seed{s}") for s in seeds) + " |")
display(Markdown("\n".join(rows)))
missing = [n for n in default if n not in runs]
failed = [n for n, r in runs.items() if "error" in r]
print(f"{len(default) - len(missing)} of the default run's {len(default)} "
      f"cells done; missing: {', '.join(missing) or 'none'}; failed: "
      f"{', '.join(failed) or 'none'}")

# %% [markdown]
# ## 2. Tables: mean ± std over seeds
# The experiment's own `results.md` (`sag_vicreg_report.markdown`): local
# accuracy, global structure, clustering ARI, for all classes and for the
# held-out ones (n: seeds per row).

# %%
display(Markdown(report.markdown(res)))

# %% [markdown]
# ## 3. Bar charts and class centroids
# The experiment's charts (`WORKDIR/figures/GROUP_METRIC.png`), one grid per
# group: mean, ± std error bars, random init hatched. Then the 24 fine-class
# centroids of the test features on their first two principal components,
# VICReg beside SAG-VICReg at the lowest seed: colour = family, ○ round /
# □ angular super-family; in the unseen runs the held-out classes are hollow.

# %%
for group in ("full", "unseen"):
  ms = res["summary"].get(group)
  if not ms:
    print(f"{group}: no runs yet")
    continue
  panels = [(t, col, report.present(ms, keys))
            for t, col, _, keys in report.metrics(group)]
  tables = list(dict.fromkeys(t for t, _, keys in panels if keys))
  fig = plt.figure(figsize=(17, 3.6 * len(tables)))
  grid = fig.add_gridspec(len(tables), 5)
  for r, table in enumerate(tables):
    row = [(col, keys) for t, col, keys in panels if t == table and keys]
    at = 0
    for j, (col, keys) in enumerate(row):
      span = 1 if len(keys) == 1 else 2  # per-level metrics group 2-3 bars
      report.draw_bars(fig.add_subplot(grid[r, at:at + span]), ms, group,
                       col, keys, legend=j == len(row) - 1)
      at += span
  show(fig)
for group, holdout in (("full", None), ("unseen", (setup["holdout_key"],
                                                   setup["holdout_classes"]))):
  fig = report.centroid_figure(runs, group, holdout)
  if fig:
    show(fig)
  else:
    print(f"{group}: no VICReg or SAG-VICReg centroids yet")

# %% [markdown]
# ## 4. Per seed: VICReg against SAG-VICReg
# A seed sets the init, the data order and the augmentations of both
# methods, so each seed is a pair. Each cell reads VICReg → SAG-VICReg (Δ);
# a difference that flips sign across seeds, or is smaller than the std,
# is within the seed spread.

# %%
KEY = (("linear", 0), ("knn_k20", 0), ("spearman", 0), ("ari_kmeans", 1),
       ("ari_agglomerative", 1), ("sgs", 0))
std = lambda a: f"{np.std(a, ddof=1):.3f}" if len(a) > 1 else "–"
for group in ("full", "unseen"):
  pairs = paired(group)
  if not pairs:
    print(f"{group}: no seed with both VICReg and SAG-VICReg yet")
    continue
  keys = keys_of(group, KEY)
  rows = ["| metric | " + " | ".join(f"seed {s}" for s in pairs) +
          " | mean Δ | std VICReg | std SAG-VICReg |",
          "|---" * (4 + len(pairs)) + "|"]
  fig, axes = plt.subplots(1, len(keys), figsize=(2.4 * len(keys), 3.0))
  for ax, (label, key) in zip(axes, keys):
    v, s = (np.array([p[i].get(key, np.nan) for p in pairs.values()])
            for i in (0, 1))
    rows.append(f"| {label} | " + " | ".join(
        f"{a:.3f} → {b:.3f} ({b - a:+.3f})" for a, b in zip(v, s)) +
                f" | {np.mean(s - v):+.3f} | {std(v)} | {std(s)} |")
    for seed, a, b in zip(pairs, v, s):
      ax.plot([0, 1], [a, b], "o-", color=f"C{seed}", label=f"seed {seed}")
    ax.set_xticks([0, 1], ["VICReg", "SAG-VICReg"], fontsize=8)
    ax.set_xlim(-0.3, 1.3)
    ax.set_title(label, fontsize=9)
  axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
  fig.suptitle(f"{group}: VICReg vs SAG-VICReg per seed", fontsize=9)
  display(Markdown(f"**{group}**\n\n" + "\n".join(rows)))
  show(fig)

# %% [markdown]
# ## 5. Do the paper's claims hold here?
# As docs/sag_vicreg.md reads them: (1) holds if SAG-VICReg's Spearman,
# Kendall, cophenetic, family/super ARI and SGS exceed VICReg's by more
# than the spread over seeds while its linear and kNN accuracy stay within
# it; (2) holds if its *unseen* kNN, NCC and hierarchy metrics exceed
# VICReg's by more than that spread. Δ = SAG-VICReg − VICReg (means over
# the seeds both have); spread = the larger of the two standard deviations
# over those seeds (ddof = 1), so at least 2 seeds are needed.

# %%
CLAIMS = {
    "(1) better global semantics at similar local accuracy": (
        "full", [("spearman", 0), ("kendall", 0), ("cophenetic_tree", 0),
                 ("cophenetic_centroids", 0), ("ari_kmeans", 1),
                 ("ari_kmeans", 2), ("ari_agglomerative", 1),
                 ("ari_agglomerative", 2), ("sgs", 0)],
        [("linear", 0), ("knn_k20", 0), ("knn_k200", 0)]),
    "(2) better on unseen clusters": (
        "unseen", [("knn_k20", 0), ("knn_k200", 0), ("ncc", 0),
                   ("spearman", 0), ("kendall", 0), ("cophenetic_tree", 0),
                   ("cophenetic_centroids", 0)], []),
}
rows = ["| claim | metric | needs | VICReg | SAG-VICReg | Δ | spread | met |",
        "|---|---|---|---:|---:|---:|---:|---|"]
verdicts = []
for claim, (group, up, within) in CLAIMS.items():
  pairs = paired(group)
  if len(pairs) < 2:
    verdicts.append(f"**{claim}**: undetermined (fewer than 2 seeds: "
                    f"{len(pairs)} with both methods in {group})")
    continue
  stats = report.aggregate({f"{group}/{m}/seed{s}": {"metrics": p[i]}
                            for s, p in pairs.items()
                            for i, m in enumerate(("vicreg", "sag_vicreg"))})
  checks = []
  for need, wanted, above in (("Δ > spread", up, True),
                              ("Δ within ± spread", within, False)):
    for label, key in keys_of(group, wanted):
      a, b = (stats[group][m].get(key) for m in ("vicreg", "sag_vicreg"))
      if not (a and b and a["n"] > 1 and b["n"] > 1 and all(
          map(math.isfinite, (a["mean"], b["mean"], a["std"], b["std"])))):
        checks.append(None)  # a seed lacks it, or it is not finite
        rows.append(f"| {claim[:3]} | {label} | {need} | – | – | – | – | ? |")
        continue
      d, spread = b["mean"] - a["mean"], max(a["std"], b["std"])
      checks.append(d > spread if above else abs(d) <= spread)
      rows.append(f"| {claim[:3]} | {label} | {need} | {a['mean']:.3f} | "
                  f"{b['mean']:.3f} | {d:+.3f} | {spread:.3f} | "
                  f"{'yes' if checks[-1] else 'no'} |")
  verdict = ("does not hold" if False in checks else
             "undetermined (a metric is missing or not finite)"
             if None in checks else "holds")
  verdicts.append(f"**{claim}**: {verdict} ({len(pairs)} seeds: "
                  f"{', '.join(map(str, pairs))}; {sum(map(bool, checks))} "
                  f"of {len(checks)} conditions met)")
display(Markdown("\n".join(rows if len(rows) > 2 else []) + "\n\n" +
                 "\n\n".join(verdicts)))
