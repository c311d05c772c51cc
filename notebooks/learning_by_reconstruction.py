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
# # Learning by reconstruction: what reconstruction spends its capacity on
#
# After `python -m ssljax.experiments.learning_by_reconstruction --workdir=DIR`
# (Balestriero & LeCun, ICML 2024), `DIR/results.json` holds, per dataset:
# 1. **pca**: test accuracy of one supervised CNN trained on the images
#    projected onto the top PCA subspace holding a share p of the pixel
#    variance, and onto the bottom rest;
# 2. **alignment**: the cumulative task alignment of the first K directions
#    of the closed-form optimal linear auto-encoder, clean and with noise or
#    masking;
# 3. **training**: linear probe / kNN of real runs (auto-encoders, MAE,
#    VICReg, SimCLR) over training, next to their reconstruction loss.
#
# Set `RESULTS` (the workdir or its results.json) or `SSLJAX_LBR`. A part or
# dataset still running is skipped.
#
# The committed outputs are from the experiment's default run on this
# repository's 2-core CPU (seed 0): all three parts on both datasets.
# The README's
# "Learning by reconstruction: the experiment" reads the same numbers.

# %% tags=["parameters"]
import os

RESULTS = os.environ.get("SSLJAX_LBR", "/tmp/lbr")

# %%
# %matplotlib inline
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

from ssljax import results

plt.rcParams["figure.dpi"] = 80  # keeps the committed outputs small
res = results.experiment(RESULTS)
datasets = list(res)
for ds in datasets:
  print(f"{ds}: parts {list(res[ds])}")

# %% [markdown]
# ## 1. What a CNN reads from each PCA subspace
# The top subspace holds a share p of the pixel variance (k directions),
# the bottom one the remaining 1 − p. The paper's point: the
# low-variance directions that reconstruction learns last are often the
# ones that classify.

# %%
with_pca = [ds for ds in datasets if res[ds].get("pca")]
fig, axes = plt.subplots(1, len(with_pca), figsize=(4.8 * len(with_pca), 3.6),
                         squeeze=False)
for ax, ds in zip(axes[0], with_pca):
  t = results.pca_table(res[ds]["pca"])
  ax.plot(t["p"], t["top"], "o-", label="top subspace (share p)")
  ax.plot(t["p"], t["bottom"], "s-", label="bottom subspace (share 1 − p)")
  if np.isfinite(t["full"]):
    ax.axhline(t["full"], color="gray", ls=":", label="all pixels")
  for p, acc, k in zip(t["p"], t["top"], t["dims"]):
    if np.isfinite(acc) and np.isfinite(k):
      ax.annotate(f"k={k:.0f}", (p, acc), fontsize=7,
                  textcoords="offset points", xytext=(0, -12))
  ax.set(title=ds, xlabel="p", ylabel="CNN test accuracy", ylim=(0, 1.05))
  ax.legend(fontsize=7)
fig.tight_layout()
display(Markdown("\n".join(
    ["| dataset | p | k (top dims) | top | bottom |", "|---|---:|---:|---:|---:|"]
    + [f"| {ds} | {p} | {k:.0f} | {top:.3f} | {bottom:.3f} |"
       for ds in with_pca
       for p, k, top, bottom in zip(*(results.pca_table(res[ds]["pca"])[c]
                                      for c in ("p", "dims", "top",
                                                "bottom")))])))

# %% [markdown]
# ## 2. Task alignment of the optimal linear auto-encoder
# Share (%) of the label energy captured by the first K directions; the
# closer a curve rises to the top-left, the sooner reconstruction reaches
# what the labels need. Solid: clean; dashed: Gaussian noise; dotted:
# masking.

# %%
with_align = [ds for ds in datasets if res[ds].get("alignment")]
if with_align:
  fig, axes = plt.subplots(1, len(with_align),
                           figsize=(5.2 * len(with_align), 3.8), squeeze=False)
  for ax, ds in zip(axes[0], with_align):
    empty = []
    for name, curve in res[ds]["alignment"].items():
      curve = np.array(curve, float)
      if not np.isfinite(curve).any():
        empty.append(name)
        continue
      style = "-" if name == "clean" else ("--" if "noise" in name else ":")
      ax.plot(np.arange(1, len(curve) + 1), curve, style, label=name)
    ax.set(xscale="log", xlabel="K (directions)", ylabel="task alignment (%)",
           title=ds)
    if empty:
      print(f"{ds}: no finite values, not drawn: {', '.join(empty)}")
  axes[0, -1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
  fig.tight_layout()
else:
  print("No alignment results yet.")

# %% [markdown]
# ## 3. Perception vs reconstruction over training
# Left: linear probe (solid) and kNN (dashed) accuracy of each run's
# representation at step 0 and every kept checkpoint. Right: the
# reconstruction runs' training loss, relative to its first logged value.

# %%
with_training = [ds for ds in datasets if res[ds].get("training")]
for ds in with_training:
  fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
  for i, (run, r) in enumerate(res[ds]["training"].items()):
    c, color = r["curve"], f"C{i}"
    steps = [p["step"] for p in c]
    a1.plot(steps, [p["linear"] for p in c], "o-", color=color, label=run)
    a1.plot(steps, [p["knn"] for p in c], "--", color=color)
    rl = [(p["step"], p["recon_loss"]) for p in c if p.get("recon_loss")]
    if rl:
      a2.plot([s for s, _ in rl], [v / rl[0][1] for _, v in rl], "o-",
              color=color, label=run)
  a1.set(xlabel="step", ylabel="accuracy", title=f"{ds}: perception")
  a2.set(xlabel="step", ylabel="loss / first logged",
         title=f"{ds}: reconstruction")
  a1.legend(fontsize=7)
  a2.legend(fontsize=7)
  fig.tight_layout()
  print(ds + ": " + ", ".join(f"{run} {r['train_minutes']:.0f} min" for run, r
                              in res[ds]["training"].items()))
if not with_training:
  print("No training results yet (the part runs last).")
