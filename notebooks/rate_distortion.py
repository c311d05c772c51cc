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
# # Rate-distortion auto-encoders: ravines in the energy, and the R-D trade
#
# After `python -m ssljax.experiments.rate_distortion --workdir=DIR`
# (Sanchez Giraldo & Principe, ICLR 2014 workshop), `DIR/results.json`
# holds:
# 1. **toy**: for each model trained on the 2-D spiral (the RD-AE on its
#    clustered batches, the same RD-AE on shuffled batches, a plain
#    over-complete AE, Gaussian-denoising AEs), the reconstruction energy
#    E(x) = ‖x − f(x)‖² on the clean curve and at offsets ±δ along its
#    normal: depth(δ) = (E(δ) − E(0)) / δ² (0: the map ignores the offset;
#    1: it projects back onto the curve) and contrast E(δ) / E(0);
# 2. **mnist**: the RD-AE at each Lagrange multiplier λ and the plain AE:
#    rate I₂(X; X̂) in bits and distortion on the test split, and linear
#    probe / kNN accuracy of the code.
#
# Set `RESULTS` (the workdir or its results.json) or `SSLJAX_RD`. The
# figures the experiment drew (energy landscapes over the plane,
# reconstructions) are shown when they sit next to the JSON.
#
# The committed outputs are from the experiment's default run on this
# repository's 2-core CPU (seed 0, 22 min).

# %% tags=["parameters"]
import os

RESULTS = os.environ.get("SSLJAX_RD", "/tmp/rd")

# %%
# %matplotlib inline
import io

import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
from etils import epath
from IPython.display import Image, Markdown, display

from ssljax import results

plt.rcParams["figure.dpi"] = 80  # keeps the committed outputs small
res = results.experiment(RESULTS)
folder = epath.Path(RESULTS)
folder = folder.parent if folder.name.endswith(".json") else folder
toy, mnist = res.get("toy", {}), res.get("mnist", {})
print(f"toy models {list(toy)}\nmnist models {list(mnist)}")
print("minutes", res.get("minutes"))


def show_png(name, width=900):
  """The experiment's figure, shrunk to `width` px and stored as JPEG: the
  landscapes' colour maps make PNGs of a megabyte in the notebook."""
  if not (folder / name).exists():
    print(f"{name}: not next to the results")
    return
  with PIL.Image.open(io.BytesIO((folder / name).read_bytes())) as im:
    im.thumbnail((width, width * 4))
    buf = io.BytesIO()
    im.convert("RGB").save(buf, format="JPEG", quality=85)
  display(Image(data=buf.getvalue(), format="jpeg"))


# %% [markdown]
# ## 1. Toy: how sharply does each energy rise off the data?
# The paper's claim: the RD-AE carves a ravine along the data (depth well
# above 0 at small δ), a plain over-complete AE does not (it learns the
# identity: depth ≈ 0), and denoising AEs sit in between.

# %%
deltas = sorted({float(k.split("_at_")[1]) for m in toy.values() for k in m
                 if k.startswith("depth_at_")})
rows = ["| model | E on curve | " + " | ".join(
    f"depth δ={d:g} | contrast δ={d:g}" for d in deltas) +
        " | min of profile | train min |",
        "|---" * (3 + 2 * len(deltas)) + "|"]
for name, m in toy.items():
  cells = [f"{m['energy_on_curve']:.2e}"]
  for d in deltas:
    cells += [f"{m.get(f'depth_at_{d:g}', np.nan):.3f}",
              f"{m.get(f'contrast_at_{d:g}', np.nan):.2f}"]
  cells += [f"{m.get('profile_min_offset', np.nan):+.3f}",
            f"{m.get('train_minutes', np.nan):.1f}"]
  rows.append(f"| {name} | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows)))

if toy and deltas:
  fig, ax = plt.subplots(figsize=(5, 3.4))
  for name, m in toy.items():
    ax.plot(deltas, [m.get(f"depth_at_{d:g}", np.nan) for d in deltas], "o-",
            label=name)
  ax.set(xlabel="offset δ (normalized units)", ylabel="depth (E(δ) − E(0)) / δ²",
         title="ravine depth off the spiral")
  ax.legend(fontsize=7)
  fig.tight_layout()
  plt.show()
show_png("energy_landscape.png")
show_png("energy_profile.png")

# %% [markdown]
# ## 2. MNIST: the rate-distortion curve and what the code keeps
# Each RD-AE point is one λ (larger λ: distortion weighs more, so more
# rate); the plain AE has no rate term.

# %%
if mnist:
  names = list(mnist)
  rate = np.array([mnist[n]["test_rate_bits"] for n in names])
  dist = np.array([mnist[n]["test_distortion"] for n in names])
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
  axes[0].plot(rate, dist, "o")
  for n, r, d in zip(names, rate, dist):
    axes[0].annotate(n, (r, d), fontsize=7, textcoords="offset points",
                     xytext=(4, 4))
  axes[0].set(xlabel="rate I₂(X; X̂) (bits)",
              ylabel="distortion mean ‖x − x̂‖²", title="test split")
  for key, marker in (("linear_probe", "o-"), ("knn_k20", "s--")):
    axes[1].plot(rate, [mnist[n][key] for n in names], marker, label=key)
  axes[1].set(xlabel="rate (bits)", ylabel="test accuracy of the code",
              title="what the code keeps")
  axes[1].legend(fontsize=7)
  fig.tight_layout()
  plt.show()
  display(Markdown("\n".join(
      ["| model | λ | rate (bits) | distortion | H(X̂) bits | linear | kNN |",
       "|---|---|---|---|---|---|---|"] +
      [f"| {n} | {mnist[n].get('lagrange')} | {mnist[n]['test_rate_bits']:.3f}"
       f" | {mnist[n]['test_distortion']:.1f} | "
       f"{mnist[n].get('test_entropy_xhat', np.nan):.2f} | "
       f"{mnist[n]['linear_probe']:.3f} | {mnist[n]['knn_k20']:.3f} |"
       for n in names])))
show_png("reconstructions.png")
