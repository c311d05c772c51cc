# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Explore a pretraining run
#
# Point `WORKDIR` at the folder of a run (`ssljax-train --workdir=...`,
# local or `gs://`), or set `SSLJAX_WORKDIR` before starting Jupyter. The
# notebook reads the run through `ssljax.results`: training curves from
# `metrics.jsonl`, the `summary.json` table, and the representations of the
# random initialization (step 0) and of the newest checkpoint, side by side,
# as 2-D maps and nearest-neighbour retrievals.
#
# The outputs committed with this notebook come from a real run on 2 CPU
# cores: `ssljax-train --config=configs/quickstart.py:hierarchical_shapes`
# (VICReg, ResNet-18 width 8, 32 px, 390 steps = 10 epochs of the 10,000
# training images of `hierarchical_shapes`).

# %% tags=["parameters"]
import os

WORKDIR = os.environ.get("SSLJAX_WORKDIR", "/tmp/ssljax_quickstart")
MAP_POINTS = int(os.environ.get("SSLJAX_MAP_POINTS", "2000"))  # t-SNE points
NUM_QUERIES = 6  # test images to retrieve neighbours for
K = 8  # neighbours per query

# %%
# %matplotlib inline
import logging

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE

from ssljax import results

logging.getLogger("absl").setLevel(logging.ERROR)  # TFDS / orbax notices
plt.rcParams["figure.dpi"] = 80  # keeps the committed outputs small
cfg = results.config(WORKDIR)
print(f"{WORKDIR}\n{cfg.method} on {cfg.data.dataset} ({cfg.data.image_size} "
      f"px), {cfg.model.name} width {cfg.model.get('width', '-')}, batch "
      f"{cfg.batch_size}")

# %% [markdown]
# ## Training curves
# Every column of `metrics.jsonl` except timings (one panel each; `eval/...`
# columns appear when the run evaluated periodically).

# %%
m = results.metrics(WORKDIR)
skip = {"step", "epoch", "num_skipped", *results.TIMING}
names = [k for k in m if k not in skip and not k.startswith("final/")
         and np.isfinite(m[k]).any()]
cols = 4
nrows = -(-len(names) // cols)
fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.3 * nrows),
                         squeeze=False)
for ax, k in zip(axes.flat, names):
  ok = np.isfinite(m[k])
  ax.plot(m["step"][ok], m[k][ok], ".-" if ok.sum() < 20 else "-")
  ax.set_title(k, fontsize=9)
  ax.tick_params(labelsize=7)
for ax in axes.flat[len(names):]:
  ax.axis("off")
fig.supxlabel("step", fontsize=9)
fig.tight_layout()
print(f"{len(m['step'])} logged steps, last {m['step'][-1]}; "
      f"{np.nanmedian(m.get('images_per_sec', [np.nan])):.0f} images/s")

# %% [markdown]
# ## Summary: random init vs trained
# `summary.json`, written at the end of the run: offline linear probe and
# kNN on the frozen representation (and the online probe trained alongside).

# %%
summ = results.summary(WORKDIR)
display(Markdown(results.summary_table(summ) if summ else
                 "*No summary.json yet (the run has not finished).*"))

# %% [markdown]
# ## Representations
# Features of the train and test splits (eval-mode, centre crop) for the
# random initialization and the newest checkpoint, with every class label
# of the dataset.

# %%
models = {}
for step in (0, None):
  train, test = results.represent(WORKDIR, ("train", "test"), step=step)
  models["random init" if step == 0 else f"trained (step {train['step']})"] = (
      train, test)
levels = list(test["y"])
print(f"train {train['x']['rep'].shape}, test {test['x']['rep'].shape}, "
      f"labels {levels}")

# %% [markdown]
# ## 2-D map of the test representations
# t-SNE of the L2-normalized representations (after PCA to 50 dimensions),
# coloured by each label level: rows random init / trained.

# %%
def embed(x):
  x = x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)
  x = PCA(min(50, *x.shape), random_state=0).fit_transform(x)
  return TSNE(2, init="pca", perplexity=min(30.0, (len(x) - 1) / 3),
              random_state=0).fit_transform(x)


n_test = len(test["y"][levels[0]])
pick = np.random.default_rng(0).permutation(n_test)[:MAP_POINTS]
fig, axes = plt.subplots(len(models), len(levels),
                         figsize=(4 * len(levels), 4 * len(models)),
                         squeeze=False)
for row, (name, (_, te)) in zip(axes, models.items()):
  xy = embed(te["x"]["rep"][pick])
  for ax, key in zip(row, levels):
    y = te["y"][key][pick]
    label_names = results.label_names(WORKDIR, key)
    n = int(y.max()) + 1
    cmap, top = ("tab10", 10) if n <= 10 else ("tab20", 20) if n <= 20 else (
        "turbo", n)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=y, cmap=cmap, vmin=-0.5,
                    vmax=top - 0.5, s=5, linewidths=0)
    if label_names and len(label_names) <= 10:
      ax.legend(sc.legend_elements()[0], label_names, fontsize=7,
                markerscale=0.8, loc="best")
    ax.set(title=f"{name}: {key}", xticks=[], yticks=[])
fig.tight_layout()

# %% [markdown]
# ## Nearest-neighbour retrieval
# Precision@K (share of each test image's K nearest training images, by
# cosine similarity, that share its label), then a few queries (left) and
# their K nearest training images; a red title marks another fine label.

# %%
rows = []
neighbours = {}
for name, (tr, te) in models.items():
  nn = results.nearest(te["x"]["rep"], tr["x"]["rep"], K)
  neighbours[name] = nn
  rows.append(f"| {name} | " + " | ".join(
      f"{100 * np.mean(tr['y'][k][nn] == te['y'][k][:, None]):.1f}%"
      for k in levels) + " |")
display(Markdown(f"| precision@{K} | " + " | ".join(levels) + " |\n|---|"
                 + "---:|" * len(levels) + "\n" + "\n".join(rows)))

# %%
fine = results.label_names(WORKDIR, levels[0])
name_of = lambda y: fine[y] if fine else str(y)
show = lambda ax, img: ax.imshow(img[..., 0] if img.shape[-1] == 1 else img,
                                 cmap="gray", interpolation="nearest")
queries = np.random.default_rng(1).choice(n_test, NUM_QUERIES, replace=False)
q_images = results.images(WORKDIR, "test", queries)
for name, (tr, te) in models.items():
  nn = neighbours[name][queries]
  n_images = results.images(WORKDIR, "train", nn.ravel()).reshape(
      *nn.shape, *q_images.shape[1:])
  fig, axes = plt.subplots(NUM_QUERIES, K + 1,
                           figsize=(1.1 * (K + 1), 1.25 * NUM_QUERIES))
  for i, q in enumerate(queries):
    yq = te["y"][levels[0]][q]
    show(axes[i, 0], q_images[i])
    axes[i, 0].set_title(name_of(yq), fontsize=6, fontweight="bold")
    for j in range(K):
      y = tr["y"][levels[0]][nn[i, j]]
      show(axes[i, j + 1], n_images[i, j])
      axes[i, j + 1].set_title(name_of(y), fontsize=6,
                               color="black" if y == yq else "red")
  for ax in axes.flat:
    ax.axis("off")
  fig.suptitle(f"{name}: query, then its {K} nearest training images",
               fontsize=9)
  fig.tight_layout()
