"""Shared test helpers: a tiny, fast config derived from the quickstart."""
import functools
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_config(name, arg=None):
  path = os.path.join(ROOT, "configs", f"{name}.py")
  spec = importlib.util.spec_from_file_location(f"configs_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def tiny_config(data_dir, **overrides):
  """Quickstart shrunk: width-4 ResNet-18 at 16 px on 1k examples."""
  c = load_config("quickstart")
  c.model.width = 4
  c.projector = "32-32"
  c.data.dataset = "hierarchical_shapes/32_small"
  c.data.data_dir = data_dir
  c.data.image_size = 16
  c.data.num_threads = 2
  c.batch_size = 32
  c.eval_batch_size = 200
  c.num_steps = 4
  c.log_every = 1
  c.checkpoint.every = 2
  c.progress = False
  c.summary_eval = False
  for key, value in overrides.items():
    node = c
    *path, leaf = key.split(".")
    for p in path:
      node = node[p]
    node[leaf] = value
  return c


# The same tiny config as command-line overrides of configs/quickstart.py.
def metrics_on_1_and_8_devices(cfg, batch, num_train=1000, num_classes=24):
  """{1: metrics, 8: metrics} of one train step from the seed-0 init on the
  same global batch, on the first 1 and the first 8 devices."""
  import jax  # pylint: disable=g-import-not-at-top
  from ssljax import train_state  # pylint: disable=g-import-not-at-top
  from ssljax import train_step  # pylint: disable=g-import-not-at-top
  from ssljax.data import pipeline  # pylint: disable=g-import-not-at-top
  out = {}
  for n in (1, 8):
    s = train_state.setup(cfg, num_train, num_classes,
                          mesh=train_state.make_mesh(jax.devices()[:n]))
    _, m = train_step.jit_train_step(s)(train_state.init_state(s, 0),
                                        pipeline.to_global(batch, s.mesh))
    out[n] = jax.device_get(m)
  return out


def tiny_flags(data_dir, num_steps=3):
  return [f"--config={os.path.join(ROOT, 'configs', 'quickstart.py')}",
          "--config.model.width=4", "--config.projector=32-32",
          "--config.data.dataset=hierarchical_shapes/32_small",
          f"--config.data.data_dir={data_dir}", "--config.data.image_size=16",
          "--config.data.num_threads=2", "--config.batch_size=32",
          "--config.eval_batch_size=200", f"--config.num_steps={num_steps}",
          "--config.log_every=1", "--config.progress=False",
          "--config.summary_eval=False"]


def fake_reverse_ssl_results(workdir, out_dir, epochs=(0.0, 1.0, 2.0)):
  """OUT_DIR/reverse_ssl/results.json as ssljax.experiments.reverse_ssl
  writes it ({"levels", "epochs", "results"}), with the names the evaluator
  really produces for configs/reverse_ssl.py's evaluations (one evaluation
  of the random init of run `workdir`) and made-up values that change over
  `epochs`."""
  import json  # pylint: disable=g-import-not-at-top
  levels, real = _reverse_ssl_evals(workdir)
  results = [{k: float(v) * (1 + 0.1 * e) if "cdnv" not in k else
              float(v) / (1 + e) for k, v in real.items()} for e in epochs]
  out = {"levels": list(levels), "epochs": list(epochs),
         "results": results}
  path = os.path.join(out_dir, "reverse_ssl", "results.json")
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, "w") as f:
    json.dump(out, f)
  return path


@functools.lru_cache
def _reverse_ssl_evals(workdir):
  from ssljax import saved_runs  # pylint: disable=g-import-not-at-top
  _, variables, evaluator, _ = saved_runs.load(workdir, 0)
  real = evaluator.run(variables, load_config("reverse_ssl").eval.cli)
  real.pop("online_probe_accuracy", None)
  return evaluator.levels, real


# ssljax.experiments.learning_by_reconstruction's alignment settings and runs.
LBR_ALIGN = (["clean", "noise 0.5", "noise 1", "noise 2"] +
             [f"mask {r} patch {s}" for r in (0.25, 0.5, 0.75)
              for s in (1, 4, 8)])
LBR_RUNS = ("vicreg", "simclr", "ae", "ae_noise", "ae_mask", "mae")


def fake_lbr_results(path, datasets=("hierarchical_shapes", "mnist5k"),
                     ps=("0.25", "0.5", "0.75", "0.9"), align_k=16,
                     partial=True):
  """A results.json in ssljax.experiments.learning_by_reconstruction's
  schema with made-up values. `partial`: as during a run, the last dataset
  has only the pca part, the first has no "mae" run yet and one p lacks its
  bottom."""
  import json  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  out = {}
  for i, ds in enumerate(datasets):
    pca = {"full": 0.9, "dims": {p: int(3 ** j + 1) for j, p in enumerate(ps)},
           "top": {p: 0.3 + 0.15 * j for j, p in enumerate(ps)},
           "bottom": {p: 0.95 - 0.05 * j for j, p in enumerate(ps)}}
    res = {"pca": pca}
    if partial and i == len(datasets) - 1:
      del pca["bottom"][ps[-1]]
      out[ds] = res
      continue
    res["alignment"] = {
        name: np.cumsum(rng.uniform(0, 100 / align_k, align_k)).tolist()
        for name in LBR_ALIGN}
    # The experiment stores a failed closed form as NaN (JSON NaN) too.
    res["alignment"]["mask 0.75 patch 8"] = [float("nan")] * align_k
    training = {}
    for run in LBR_RUNS[:-1] if partial else LBR_RUNS:
      curve = [{"step": s, "linear": 0.2 + 0.001 * s, "knn": 0.15 + 0.001 * s}
               for s in (0, 20, 40)]
      if run.startswith("ae") or run == "mae":
        for j, point in enumerate(curve[1:]):
          point["recon_loss"] = 1.0 / (j + 1)
      training[run] = {"curve": curve, "train_minutes": 1.5}
    res["training"] = training
    out[ds] = res
  with open(path, "w") as f:
    json.dump(out, f)
  return path


def fake_rd_results(path, deltas=(0.05, 0.1), lambdas=(0.01, 0.1)):
  """A results.json in ssljax.experiments.rate_distortion's schema (toy
  ravine measures per model, mnist rate / distortion / probes per λ and
  the plain AE), made-up values, no figures beside it."""
  import json  # pylint: disable=g-import-not-at-top
  toy = {}
  for i, name in enumerate(("rdae", "rdae_shuffled", "ae", "dae0.1")):
    m = {"train_minutes": 1.0, "energy_on_curve": 1e-3 * (i + 1),
         "energy_on_train_data": 2e-3, "profile_min_offset": -0.025 * i}
    for d in deltas:
      m[f"energy_at_{d:g}"] = 1e-3 * (i + 2)
      m[f"depth_at_{d:g}"] = 0.25 / (i + 1)
      m[f"contrast_at_{d:g}"] = 1.0 + i
    toy[name] = m
  mnist = {}
  for j, lam in enumerate(list(lambdas) + [None]):
    mnist["ae" if lam is None else f"lam{lam}"] = {
        "lagrange": lam, "train_minutes": 1.0, "eval_minutes": 0.1,
        "test_rate_bits": 0.5 + j, "test_distortion": 300.0 / (j + 1),
        "test_recon_mse": 0.3 / (j + 1), "test_entropy_x": 4.8,
        "test_entropy_xhat": 1.0 + j, "linear_probe": 0.9, "knn_k20": 0.85}
  with open(path, "w") as f:
    json.dump({"toy": toy, "mnist": mnist,
               "minutes": {"toy": 1.0, "mnist": 1.0}}, f)
  return path


# The result names ssljax.experiments.sag_vicreg's evaluations produce for a
# full run (EVALS with coarse_label_keys coarse_label, super_label).
SAG_LEVEL_METRICS = ("agglo_ari", "agglo_nmi", "agglo_ri", "kmeans_ari",
                     "kmeans_nmi", "kmeans_ri", "knn_k20", "knn_k200",
                     "linear_test", "linear_train", "ncc_test", "ncc_train")
SAG_TREE_METRICS = ("cophenetic_correlation", "kendall", "spearman",
                    "tree_cophenetic_correlation")


def _sag_metrics(kinds, value):
  out = {}
  for kind in kinds:
    out[f"rep/-/{'-' if kind == 'true' else kind}/spectral_gs"] = value("sgs")
    out.update({f"rep/{lv}/{kind}/{m}": value(m) for m in SAG_LEVEL_METRICS
                for lv in ("label", "coarse_label", "super_label")})
    out.update({f"rep/tree/{kind}/{m}": value(m) for m in SAG_TREE_METRICS})
  return out


def fake_sag_results(out_dir):
  """OUT_DIR/results.json in ssljax.experiments.sag_vicreg's schema, as a
  run leaves it half-way: full runs of vicreg, sag_vicreg and the random
  init at seeds 0 and 1; unseen runs of vicreg at both seeds and of
  sag_vicreg and the random init at seed 0 only. Made-up values: in the
  full runs SAG-VICReg's global metrics are 0.2 above VICReg's (seed spread
  0.01) at the same local accuracy."""
  import json  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from ssljax.experiments import sag_vicreg_report  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  local = ("knn", "linear", "ncc")
  base = {"random_init": 0.1, "vicreg": 0.4, "sag_vicreg": 0.4}
  fine = np.arange(24)
  runs = {}
  for name in ("full/vicreg/seed0", "full/sag_vicreg/seed0",
               "full/random_init/seed0", "full/vicreg/seed1",
               "full/sag_vicreg/seed1", "full/random_init/seed1",
               "unseen/vicreg/seed0", "unseen/sag_vicreg/seed0",
               "unseen/random_init/seed0", "unseen/vicreg/seed1"):
    group, method, seed = name.split("/")
    jitter = 0.01 * int(seed[4:])
    value = lambda m: base[method] + jitter + (0.2 * (
        method == "sag_vicreg" and group == "full"
        and not m.startswith(local)))
    kinds = ("true",) if group == "full" else ("true", "unseen", "seen")
    runs[name] = {
        "metrics": _sag_metrics(kinds, value),
        "centroids": {"fine": fine.tolist(), "coarse": (fine // 4).tolist(),
                      "super": (fine // 12).tolist(),
                      "mean": rng.normal(size=(24, 8)).round(5).tolist()},
        "eval_minutes": 0.5}
    if method != "random_init":
      runs[name]["train_minutes"] = 6.0
  results = {"setup": {"dataset": "hierarchical_shapes", "train_steps": None,
                       "batch_size": None, "holdout_key": "coarse_label",
                       "holdout_classes": [2, 5]},
             "runs": runs, "summary": sag_vicreg_report.aggregate(runs)}
  os.makedirs(out_dir, exist_ok=True)
  path = os.path.join(out_dir, "results.json")
  with open(path, "w") as f:
    json.dump(results, f)
  return path
