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
# # Reverse-engineering SSL: class geometry per layer over training
#
# After `python -m ssljax.experiments.reverse_ssl --workdir=DIR` (Ben-Shaul et al.,
# NeurIPS 2023), `DIR/reverse_ssl/results.json` holds, for the random init
# and every kept checkpoint, the nearest-class-centre (NCC) accuracy and
# the class-distance normalized variance (CDNV) of every layer at every
# label level (fine to coarse), with the true labels and with randomly
# permuted ones (the control), plus hierarchy correlations and RankMe.
# Set `RESULTS` (a workdir, its `reverse_ssl/` folder or the JSON file) or
# `SSLJAX_REVERSE_SSL`.
#
# The committed outputs are from the experiment's default run
# (`configs/reverse_ssl.py`: VICReg on `hierarchical_shapes` 3.0.0,
# ResNet-18 width 8, 16 epochs, a checkpoint every 2; seed 0, 11.5 minutes
# on 2 CPU cores, 2026-12-04). docs/results/reverse_ssl.md gives the mean ±
# std over seeds 0-2 (`results.seed_curves`).

# %% tags=["parameters"]
import os

RESULTS = os.environ.get("SSLJAX_REVERSE_SSL", "/tmp/reverse_ssl")

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np

from ssljax import results

plt.rcParams["figure.dpi"] = 80  # keeps the committed outputs small
res = results.reverse_ssl(RESULTS)
levels, epochs, layers = res["levels"], np.array(res["epochs"]), \
    results.layers(res)
colors = plt.cm.viridis(np.linspace(0, 1, len(layers)))
print(f"levels {levels}\nepochs {np.round(epochs, 2).tolist()}\n"
      f"layers {layers}")

# %% [markdown]
# ## NCC test accuracy and train CDNV per layer over training
# One panel per label level; colour: depth (dark = input side), solid: true
# labels, dashed: random labels. Lower CDNV = tighter classes relative to
# the distance between their centres. `rep` is the pooled output of the
# last stage, so its curve covers the last stage's.

# %%
def per_layer(metric, log=False):
  fig, axes = plt.subplots(1, len(levels), figsize=(4.5 * len(levels), 3.6),
                           squeeze=False)
  for ax, lv in zip(axes[0], levels):
    for color, layer in zip(colors, layers):
      for kind, style in (("true", "-"), ("random", "--")):
        ax.plot(epochs, results.curve(res, f"{layer}/{lv}/{kind}/{metric}"),
                style, color=color, marker=".",
                label=layer if kind == "true" else None)
    ax.set(title=f"{metric} ({lv})", xlabel="epoch",
           yscale="log" if log else "linear")
  axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.tight_layout()


per_layer("ncc_test")
per_layer("cdnv_train", log=True)

# %% [markdown]
# ## NCC accuracy vs depth: random init against the end of training

# %%
fig, axes = plt.subplots(1, len(levels), figsize=(4.5 * len(levels), 3.6),
                         squeeze=False)
for ax, lv in zip(axes[0], levels):
  for i, style in ((0, ":"), (-1, "-")):
    r = res["results"][i]
    for metric, marker in (("ncc_train", "o"), ("ncc_test", "s")):
      ax.plot(layers, [r.get(f"{l}/{lv}/true/{metric}", np.nan)
                       for l in layers], style, marker=marker,
              label=f"{metric}, epoch {epochs[i]:.0f}")
    ax.plot(layers, [r.get(f"{l}/{lv}/random/ncc_train", np.nan)
                     for l in layers], "--", color="gray",
            label=f"ncc_train, random labels, epoch {epochs[i]:.0f}"
            if i else None)
  ax.set(title=f"NCC accuracy vs depth ({lv})", ylim=(0, 1))
  ax.tick_params(axis="x", labelsize=7, rotation=45)
axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
fig.tight_layout()

# %% [markdown]
# ## Hierarchy and rank of the representation over training
# Correlations between feature distances and the label tree (level
# `tree`, true labels) and RankMe (label-free), for every layer.

# %%
tree = sorted({k.split("/")[3] for r in res["results"] for k in r
               if k.split("/")[1:3] == ["tree", "true"]})
label_free = sorted({k.split("/")[3] for r in res["results"] for k in r
                     if k.split("/")[1:3] == ["-", "-"]})
panels = [("tree", m) for m in tree] + [("-", m) for m in label_free]
if panels:
  ncols = min(3, len(panels))
  nrows = -(-len(panels) // ncols)
  fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows),
                           squeeze=False)
  for ax, (lv, metric) in zip(axes.flat, panels):
    for color, layer in zip(colors, layers):
      ax.plot(epochs, results.curve(res, f"{layer}/{lv}/-/{metric}" if
                                    lv == "-" else
                                    f"{layer}/{lv}/true/{metric}"),
              color=color, marker=".", label=layer)
    ax.set(title=metric, xlabel="epoch")
  for ax in axes.flat[len(panels):]:
    ax.axis("off")
  axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.tight_layout()
else:
  print("No hierarchy or RankMe results in this file.")
