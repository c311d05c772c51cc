"""Rate-distortion auto-encoders (Sanchez Giraldo & Principe, ICLR 2014) on a
CPU: energy landscapes on 2-D toy data and a rate-distortion curve on MNIST.

  python -m ssljax.experiments.rate_distortion --workdir=/tmp/rd \
      [--parts=toy,mnist]

1. Toy (configs/rdae_spiral2d.py, data `spiral2d`): models with the same
   softplus MLP, optimizer and steps, in W/toy/<model>: the RD-AE (the
   config: clustered batches), the same RD-AE on ordinary shuffled batches
   (rdae_shuffled: what the clustering does), a plain over-complete AE
   (ae: rdae.rate=none) and Gaussian-denoising AEs (dae<σ>: rate none,
   noise_std = σ for each σ of --dae_noise). The baselines train on
   shuffled batches, their usual setting: clustered batches are part of
   the RD-AE recipe, and in trial runs the AEs fitted worse on them. The
   energy E(x) = ‖x − f(x)‖² over a grid of the plane (normalized
   coordinates) -> W/energy_landscape.png. The ravine measure:
   on --curve_points points c of the clean curve and at c ± δ·n (n its unit
   normal), the mean energies E(0) and E(δ), and depth(δ) = (E(δ) − E(0))
   / δ²: 0 when the map ignores the offset (identity-like, no ravine), 1
   when it undoes it (a projection onto the curve: a ravine as wide as δ);
   and the contrast E(δ) / E(0): how far the floor of the ravine lies below
   its walls (a map that spends a distortion budget D₀ on the data can
   have depth with its floor at D₀). The mean energy against the signed
   offset -> W/energy_profile.png; the offset where it is lowest ->
   profile_min_offset (< 0: inside the spiral).
2. MNIST (configs/rdae_mnist.py, data `mnist5k`): the RD-AE at every λ of
   --lambdas (fixed schedule) and the plain AE, in W/mnist/{lam<λ>,ae}.
   For each: the rate I_α(X; X̂) (bits) and distortion mean ‖x − x̂‖² on the
   test split (batches of 200 in the split's order, σ by the config's rule)
   -> W/rate_distortion.png; the first 8 test digits and every model's
   reconstructions -> W/reconstructions.png; linear probe and kNN (k = 20)
   on the hidden code (ssljax.saved_runs, the evaluators of ssljax-eval).
W/results.json holds every number and the minutes each part took. Runs
that finished are not retrained (train.py resumes a workdir). Measured
runtime (22 min on 2 shared CPU cores) and results: docs/rate_distortion.md.
"""

import json
import time

from absl import app
from absl import flags
from etils import epath
import matplotlib

matplotlib.use("Agg")  # files only; no display on a server
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import jax
import jax.numpy as jnp
import numpy as np
from ssljax import experiments
from ssljax import files
from ssljax import methods
from ssljax import runtime
from ssljax import saved_runs
from ssljax import train
import ssljax.data
from ssljax.data import spiral2d
from ssljax.methods import rdae

FLAGS = flags.FLAGS


def _define_flags():
  # Defined when run, so tests can import run_toy / run_mnist next to the
  # other experiments, which define --workdir too.
  flags.DEFINE_string("workdir", None, "Root directory of the runs.")
  flags.DEFINE_list("parts", ["toy", "mnist"], "Which experiments.")
  flags.DEFINE_list("lambdas", ["0.001", "0.003", "0.01", "0.03", "0.1"],
                    "λ of the MNIST RD-AE sweep (fixed schedule).")
  flags.DEFINE_list("dae_noise", ["0.1", "0.2"], "Noise std of the toy "
                    "denoising AEs (normalized units; the data's own noise "
                    "is 0.04, the arms are 0.8 apart).")
  flags.DEFINE_list("deltas", ["0.05", "0.1", "0.2"], "Offsets δ of the "
                    "ravine measure (normalized units; arms are 0.8 apart).")
  flags.DEFINE_integer("curve_points", 2000, "Clean-curve points measured.")
  flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: TFDS's).")
  flags.mark_flag_as_required("workdir")


GRID = 2.2  # the energy grid spans [−GRID, GRID]² (the data: ±1.8)
FLOOR = -5.0  # log10 energy at the bottom of the colour scale


def get_config(name):
  return experiments.load_config(name)


def _train(cfg, workdir):
  cfg.summary_eval = False  # evaluated here
  cfg.progress = False
  t = time.perf_counter()
  train.train_and_evaluate(cfg, workdir)
  _, variables, _, _ = saved_runs.load(workdir)
  return variables, (time.perf_counter() - t) / 60


def _reconstruct(cfg, variables):
  net = methods.build(cfg)
  return jax.jit(lambda x: net.apply(variables, x, method="reconstruct"))


def _energy(f, x):
  x = jnp.asarray(x, jnp.float32)
  return np.asarray(jnp.sum(jnp.square(f(x) - x), axis=-1))


# ----------------------------------------------------------------------------
# 1. Toy: energy landscapes.
# ----------------------------------------------------------------------------
def _configs(name, variants, data_dir, tweak):
  """{run: config `name` with the run's changes, data_dir and tweak}."""
  out = {}
  for run, change in variants.items():
    cfg = get_config(name)
    change(cfg)
    cfg.data.data_dir = data_dir
    if tweak:
      tweak(cfg)
    out[run] = cfg
  return out


def toy_configs(dae_noise, data_dir=None, tweak=None):
  def shuffled(cfg):
    cfg.data.cluster.num_clusters = 0

  def plain(cfg):
    shuffled(cfg)
    cfg.rdae.rate = "none"

  def denoising(sigma):
    def change(cfg):
      plain(cfg)
      cfg.rdae.noise_std = float(sigma)
    return change

  variants = {"rdae": lambda cfg: None, "rdae_shuffled": shuffled,
              "ae": plain}
  variants.update({f"dae{sigma}": denoising(sigma) for sigma in dae_noise})
  return _configs("rdae_spiral2d", variants, data_dir, tweak)


def _label(name):
  if name.startswith("dae"):
    return f"denoising AE, σ={name[3:]}"
  return {"rdae": "RD-AE (clustered batches)",
          "rdae_shuffled": "RD-AE (shuffled batches)",
          "ae": "plain AE"}[name]


def run_toy(workdir, *, data_dir=None, dae_noise=("0.1", "0.2"),
            deltas=(0.05, 0.1, 0.2), curve_points=2000, tweak=None):
  """Trains the three toy models; returns (results, PNG paths). `tweak`:
  a function applied to every config before training (tests shrink)."""
  cfgs = toy_configs(dae_noise, data_dir, tweak)
  d = cfgs["rdae"].data
  mean, std = np.array(d.mean[:2]), np.array(d.std[:2])
  if std[0] != std[1]:
    raise ValueError(f"data.std = {d.std}: the ravine measure needs the "
                     "same std on both axes (distances stay isotropic).")
  theta = np.linspace(spiral2d.THETA_MIN, spiral2d.THETA_MAX, curve_points)
  curve, normal = spiral2d.curve(theta)
  curve = (curve - mean) / std  # normalized coordinates; the unit normals
  # keep their direction and length under this isotropic map
  src = ssljax.data.load_source(d.dataset, d.train_split, data_dir)
  data = (spiral2d.to_points(np.stack([src[i]["image"] for i in range(
      len(src))])) - mean) / std
  axis = np.linspace(-GRID, GRID, 201)
  grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
  offsets = np.linspace(-0.4, 0.4, 33)
  out, maps, profiles = {}, {}, {}
  for name, cfg in cfgs.items():
    variables, minutes = _train(cfg, str(epath.Path(workdir) / "toy" / name))
    f = _reconstruct(cfg, variables)
    e0 = float(_energy(f, curve).mean())
    r = {"train_minutes": minutes, "energy_on_curve": e0,
         "energy_on_train_data": float(_energy(f, data).mean())}
    for delta in deltas:
      e = float(np.mean([_energy(f, curve + s * delta * normal).mean()
                         for s in (1, -1)]))
      r[f"energy_at_{delta:g}"] = e
      r[f"depth_at_{delta:g}"] = (e - e0) / delta ** 2
      r[f"contrast_at_{delta:g}"] = e / e0
    out[name] = r
    maps[name] = _energy(f, grid).reshape(len(axis), len(axis))
    profiles[name] = [float(_energy(f, curve + s * normal).mean())
                      for s in offsets]
    # where across the curve the energy is lowest: 0 when the ravine
    # follows the data, < 0 when it lies inside the spiral (normals point out)
    r["profile_min_offset"] = float(offsets[int(np.argmin(profiles[name]))])
    print(f"toy {name}: " + ", ".join(f"{k} {v:.4g}" for k, v in r.items()),
          flush=True)
  pngs = [_plot_landscapes(maps, data, out, deltas, workdir),
          _plot_profiles(offsets, profiles, workdir)]
  return out, pngs


def _plot_landscapes(maps, data, results, deltas, workdir):
  cols = min(len(maps), 3)
  rows = -(-len(maps) // cols)
  fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.6 * rows),
                           squeeze=False)
  for ax in axes.ravel()[len(maps):]:
    ax.axis("off")
  # One colour scale for every panel: per-panel scales would show an
  # identity-like map's 1e-7 floor as a ravine as deep as a projection's.
  top = max(float(np.log10(e.max())) for e in maps.values())
  for ax, (name, e) in zip(axes.ravel(), maps.items()):
    im = ax.imshow(np.log10(e + 1e-12), origin="lower", cmap="viridis",
                   extent=(-GRID, GRID, -GRID, GRID), vmin=FLOOR, vmax=top)
    ax.scatter(data[::4, 0], data[::4, 1], s=0.2, c="r", alpha=0.4)
    r, delta = results[name], deltas[len(deltas) // 2]
    ax.set_title(f"{_label(name)}\nat δ={delta:g}: "
                 f"depth {r[f'depth_at_{delta:g}']:.2f}, contrast "
                 f"{r[f'contrast_at_{delta:g}']:.1f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
  fig.suptitle("Energy log10 ‖x − f(x)‖² over the plane (one colour scale, "
               f"clipped at {FLOOR:g}); red: every 4th training point")
  return _save(fig, workdir, "energy_landscape.png")


def _plot_profiles(offsets, profiles, workdir):
  fig, ax = plt.subplots(figsize=(6, 4.2))
  for name, p in profiles.items():
    ax.plot(offsets, p, label=_label(name))
  ax.plot(offsets, offsets ** 2, "k--", label="δ² (projection onto curve)")
  ax.set(xlabel="signed offset δ from the clean curve (normalized units)",
         ylabel="mean energy ‖x − f(x)‖²", yscale="log",
         title="Energy across the data manifold")
  ax.legend(fontsize=8)
  return _save(fig, workdir, "energy_profile.png")


# ----------------------------------------------------------------------------
# 2. MNIST: rate-distortion curve, reconstructions, probes.
# ----------------------------------------------------------------------------
def mnist_configs(lambdas, data_dir=None, tweak=None):
  def lagrange(lam):
    return lambda cfg: setattr(cfg.rdae, "lagrange", float(lam))

  def plain(cfg):
    cfg.rdae.rate = "none"

  variants = {f"lam{lam}": lagrange(lam) for lam in lambdas}
  variants["ae"] = plain
  return _configs("rdae_mnist", variants, data_dir, tweak)


def _test_inputs(cfg):
  d = cfg.data
  src = ssljax.data.load_source(d.dataset, d.eval_split, d.data_dir)
  x = np.stack([src[i]["image"] for i in range(len(src))])[..., :1]
  x = (x / 255.0 - cfg.data.mean[0]) / cfg.data.std[0]
  return x.reshape(len(x), -1).astype(np.float32)


def rate_distortion(cfg, f, x, batch=200):
  """Mean over test batches of (rate bits, distortion, S(X), S(X̂))."""
  rows = []
  for i in range(0, len(x) - batch + 1, batch):
    xb = jnp.asarray(x[i:i + batch])
    xh = f(xb)
    terms = rdae.rate_terms(xb, xh, rdae.kernel_width(xb, cfg.rdae),
                            float(cfg.rdae.alpha))
    rows.append([terms["rate"], rdae.distortion(xb, xh),
                 terms["entropy_x"], terms["entropy_xhat"]])
  return [float(v) for v in np.mean(np.asarray(rows), axis=0)]


def run_mnist(workdir, *, data_dir=None,
              lambdas=("0.001", "0.003", "0.01", "0.03", "0.1"), tweak=None):
  """Trains the λ sweep and the plain AE; returns (results, PNG paths)."""
  cfgs = mnist_configs(lambdas, data_dir, tweak)
  x = _test_inputs(cfgs["ae"])
  out, recons = {}, {}
  for name, cfg in cfgs.items():
    wd = str(epath.Path(workdir) / "mnist" / name)
    variables, minutes = _train(cfg, wd)
    f = _reconstruct(cfg, variables)
    rate, dist, s_x, s_xh = rate_distortion(cfg, f, x)
    t = time.perf_counter()
    probes, _ = saved_runs.evaluate(wd, names="linear,knn")
    r = {"lagrange": None if name == "ae" else float(cfg.rdae.lagrange),
         "train_minutes": minutes,
         "eval_minutes": (time.perf_counter() - t) / 60,
         "test_rate_bits": rate, "test_distortion": dist,
         "test_recon_mse": dist / x.shape[1], "test_entropy_x": s_x,
         "test_entropy_xhat": s_xh,
         "linear_probe": probes["rep/label/true/linear_test"],
         "knn_k20": probes["rep/label/true/knn_k20"]}
    out[name] = r
    recons[name] = np.asarray(f(jnp.asarray(x[:8])))
    print(f"mnist {name}: " + ", ".join(
        f"{k} {v:.4g}" for k, v in r.items() if v is not None), flush=True)
  cfg = cfgs["ae"]
  pngs = [_plot_rd(out, workdir),
          _plot_recons(x[:8], recons, cfg.data, workdir)]
  return out, pngs


def _plot_rd(results, workdir):
  fig, ax = plt.subplots(figsize=(6, 4.2))
  sweep = [(r["test_distortion"], r["test_rate_bits"], r["lagrange"])
           for r in results.values() if r["lagrange"] is not None]
  sweep.sort()
  ax.plot([s[0] for s in sweep], [s[1] for s in sweep], "o-", label="RD-AE")
  for d, rate, lam in sweep:
    ax.annotate(f"λ={lam:g}", (d, rate), textcoords="offset points",
                xytext=(4, 4), fontsize=8)
  ae = results["ae"]
  ax.plot([ae["test_distortion"]], [ae["test_rate_bits"]], "s",
          label="plain AE")
  ax.set(xlabel="distortion mean ‖x − x̂‖² (test, normalized pixels)",
         ylabel="rate I₂(X; X̂) (bits, test batches of 200)",
         title="Rate-distortion on mnist5k")
  ax.legend(fontsize=8)
  return _save(fig, workdir, "rate_distortion.png")


def _plot_recons(x, recons, data_cfg, workdir):
  rows = {"input": x, **recons}
  side = int(round(np.sqrt(x.shape[1])))
  fig, axes = plt.subplots(len(rows), len(x),
                           figsize=(1.1 * len(x), 1.2 * len(rows)))
  for i, (name, imgs) in enumerate(rows.items()):
    for j, img in enumerate(imgs):
      pixels = img.reshape(side, side) * data_cfg.std[0] + data_cfg.mean[0]
      axes[i, j].imshow(np.clip(pixels, 0, 1), cmap="gray", vmin=0, vmax=1)
      axes[i, j].set_xticks([])
      axes[i, j].set_yticks([])
    axes[i, 0].set_ylabel(name, fontsize=8)
  return _save(fig, workdir, "reconstructions.png")


def _save(fig, workdir, name):
  fig.tight_layout()
  path = files.save_figure(fig, epath.Path(workdir) / name)
  plt.close(fig)
  return path


def main(argv):
  del argv
  runtime.quiet_library_logs(FLAGS.verbosity)
  unknown = set(FLAGS.parts) - {"toy", "mnist"}
  if unknown:
    raise app.UsageError(f"Unknown --parts {sorted(unknown)}; valid: toy, "
                         "mnist.")
  results, pngs, minutes = {}, [], {}
  parts = {"toy": lambda w: run_toy(
      w, data_dir=FLAGS.data_dir, dae_noise=tuple(FLAGS.dae_noise),
      deltas=[float(v) for v in FLAGS.deltas],
      curve_points=FLAGS.curve_points),
           "mnist": lambda w: run_mnist(w, data_dir=FLAGS.data_dir,
                                        lambdas=FLAGS.lambdas)}
  for part, fn in parts.items():
    if part in FLAGS.parts:
      t = time.perf_counter()
      results[part], p = fn(FLAGS.workdir)
      minutes[part] = (time.perf_counter() - t) / 60
      pngs += p
  results["minutes"] = minutes
  path = epath.Path(FLAGS.workdir) / "results.json"
  files.write_atomic(path, json.dumps(results, indent=1))
  print("\n".join(["written:", str(path)] + pngs))


if __name__ == "__main__":
  _define_flags()
  app.run(main)
