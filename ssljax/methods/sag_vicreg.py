"""SAG-VICReg (Simai, Talmon, Shaham, arXiv 2506.18104): VICReg + walk pairs.

VICReg is a spectral embedding on a graph whose only edges join the two views
of one image; SAG-VICReg adds cross-image positive pairs drawn by a random
walk on a similarity graph of the batch, so the embedding also has to respect
relations between images. Everything VICReg has is unchanged (network and
conventions of `ssljax.methods.vicreg`: projector, λ/μ/ν, std and covariance
terms over the global batch); only the invariance term is mixed:

  Y      = [z1; z2]  [2n, d], projector outputs of the two global views,
           view-major (row v·n + i = view v of image i)
  p      = ops.random_walk_partners(key, G, num_views=2, ...) [2n]: the kNN
           graph of G (the same 2n rows in the graph space, below), with
           the augmentation edge always present; partner p(a) drawn from
           row a of Pᵗ
  repr   = mean_{i,k} (z1_ik − z2_ik)²              (VICReg's invariance)
  pair   = mean_{a,k} (Y_ak − Y_p(a),k)²            (every row and its partner)
  loss   = λ·[(1 − α_t)·repr + α_t·pair] + μ·std + ν·cov
         = VICReg loss + λ·α_t·(pair − repr)          (as computed)

so α_t = 0 gives VICReg's loss exactly, and partners that are all the other
view give pair = repr. Local views (data.num_local) are encoded but unused.

The paper does not publish the graph, the walk, the weights or the schedule;
these are the choices made here, each a config field (`pairing.*`):

  weight (α, 0.5)       share of the invariance term given to walk pairs
  warmup_fraction (0.1), ramp_fraction (0.1)
                        α_t = 0 for t < w = round(warmup_fraction·T) (T =
                        total steps): early embeddings are near random and
                        their graph would pair unrelated images; then α_t =
                        weight·min(1, (t − w + 1)/r), r = round(ramp_fraction
                        ·T) (r = 0: full weight at once). Fractions of the
                        run, not epochs, because the objective knows T but
                        not the epoch length. The step t is the method
                        state's "step", set to s + 1 after step s's update;
                        a step dropped by the non-finite policy keeps the
                        state, so the count lags by one for the next step.
  graph_source ("online") "online": graph on this step's online features;
                        "ema": on an EMA copy of the network (`ema.*`,
                        `ssljax.methods.ema`; BYOL's convention: train-mode
                        forward, its own BN statistics), steadier, one more
                        forward of the two views
  graph_features ("encoder")
                        "encoder": the trunk's representation (what is
                        evaluated; the projector space is being whitened by
                        the loss itself, which flattens its neighbourhoods);
                        "projector": the projector outputs
  steps (t, 3), num_neighbors (10), affinity ("gaussian"), scale_k (5),
  aug_weight (1.0), sampler ("walk")
                        the walk: `ops.random_walk_partners` (its docstring
                        defines each); SpectralNet's Gaussian kernel with
                        a median k-th-neighbour scale, kNN-sparsified and
                        symmetrized; three steps reach neighbours of
                        neighbours without mixing over the whole batch
  stop_partner_grad (False)
                        False: both ends of a pair move (as VICReg's two
                        views and SpectralNet's Σ W_ij‖y_i − y_j‖²); True:
                        the partner is a fixed target for its anchor

The graph is built once over the global batch (gathered; `mesh`), so every
device draws the same partners; no gradient flows through it. Before the
warm-up ends the drawn partners are replaced by the identity (the loss is
VICReg's bit for bit); the graph and the EMA forward are still computed,
which costs one two-view forward per warm-up step with an EMA graph
(about 3% of a run at warmup_fraction 0.1), because a `lax.cond` around
collectives is not ordered against the step's other collectives on every
backend (XLA:CPU deadlocks on it).
Metrics add pair_loss, pair_weight (α_t), invariance (the mixed term),
partner_other_view, partner_self and partner_other_image (fractions of
the 2n partners that are the other view of the row's image, the row
itself, or a view of another image; they sum to 1), and z_std_mean,
z_std_min (`base.std_summary` of the L2-normalized rows of Y; VICReg's
`std` is the raw one). The partners go to train_step.py as LossAux.pairs, which
adds pair_same_<key> for every label key of the batch (`label`,
`coarse_label`, eval.coarse_label_keys): the fraction of the cross-image
pairs whose two images share that label (`base.pair_label_metrics`; the
loss never reads labels). Before the warm-up (α_t = 0) every row is its
own partner: partner_other_image and pair_same_* are 0 then.
"""

import jax
import jax.numpy as jnp
import ml_collections

from ssljax import losses
from ssljax import ops
from ssljax.methods import base
from ssljax.methods import ema
from ssljax.methods import joint
from ssljax.methods import vicreg

GRAPH_SOURCES = ("online", "ema")
GRAPH_FEATURES = ("encoder", "projector")


def default_config():
  c = vicreg.default_config()
  c.pairing = ml_collections.ConfigDict(dict(
      weight=0.5, warmup_fraction=0.1, ramp_fraction=0.1,
      graph_source="online", graph_features="encoder", steps=3,
      num_neighbors=10, affinity="gaussian", scale_k=5, aug_weight=1.0,
      sampler="walk", stop_partner_grad=False))
  c.ema = ema.default_config()  # used only with graph_source = "ema"
  return c


build = vicreg.build


def walk_kwargs(p, mesh=None):
  """The `ops.random_walk_partners` arguments of a `pairing` config."""
  return dict(num_neighbors=p.num_neighbors, steps=p.steps,
              affinity=p.affinity, scale_k=p.scale_k, num_views=2,
              aug_weight=p.aug_weight, sampler=p.sampler, mesh=mesh)


def check(cfg):
  """Raises ValueError naming each bad `pairing` field and what is valid."""
  p = cfg.pairing
  if p.graph_source not in GRAPH_SOURCES:
    raise ValueError(f"Unknown pairing.graph_source {p.graph_source!r}; "
                     f"valid: {', '.join(GRAPH_SOURCES)}.")
  if p.graph_features not in GRAPH_FEATURES:
    raise ValueError(f"Unknown pairing.graph_features {p.graph_features!r}; "
                     f"valid: {', '.join(GRAPH_FEATURES)}.")
  for field in ("weight", "warmup_fraction", "ramp_fraction"):
    if not 0.0 <= p[field] <= 1.0:
      raise ValueError(f"pairing.{field} = {p[field]} must be in [0, 1].")
  kw = walk_kwargs(p)
  del kw["mesh"]
  try:  # the graph holds the two views of every image of the global batch
    ops.check_walk_args(2 * cfg.batch_size, **kw)
  except ValueError as e:
    raise ValueError(f"pairing: {e}") from e
  if p.graph_source == "ema":
    ema.check(cfg.ema)


def pair_weight(p, step, total_steps):
  """α_t of the module docstring (float32 scalar; 0 before the warm-up)."""
  start = round(p.warmup_fraction * total_steps)
  ramp = round(p.ramp_fraction * total_steps)
  step = jnp.asarray(step, jnp.float32)
  frac = 1.0 if ramp == 0 else jnp.minimum(1.0, (step - start + 1) / ramp)
  return jnp.where(step >= start, p.weight * frac, 0.0).astype(jnp.float32)


def sag_loss(z1, z2, partners, alpha, *, sim_coeff=25.0, std_coeff=25.0,
             cov_coeff=1.0, stop_partner_grad=False):
  """VICReg loss + λ·α·(pair − repr) (module docstring), float32.

  z1, z2: [n, d] projector outputs; partners: int [2n] indexing the rows of
  [z1; z2]; alpha: the pair weight α. Returns (loss, metrics).
  """
  loss_v, metrics = losses.vicreg(z1, z2, sim_coeff=sim_coeff,
                                  std_coeff=std_coeff, cov_coeff=cov_coeff)
  y = jnp.concatenate([z1, z2]).astype(jnp.float32)
  y_p = y[partners]
  if stop_partner_grad:
    y_p = jax.lax.stop_gradient(y_p)
  pair = jnp.mean(jnp.square(y - y_p))
  repr_loss = metrics["repr_loss"]
  # Written as a correction to VICReg's loss so that α = 0 returns that
  # loss bit for bit (x + 0 = x), not a re-association of it.
  loss = loss_v + sim_coeff * alpha * (pair - repr_loss)
  n = z1.shape[0]
  rows = jnp.arange(2 * n)
  metrics.update(
      loss=loss, pair_loss=pair, pair_weight=alpha,
      invariance=(1 - alpha) * repr_loss + alpha * pair,
      partner_other_view=jnp.mean(partners == (rows + n) % (2 * n)),
      partner_self=jnp.mean(partners == rows),
      partner_other_image=jnp.mean(partners % n != rows % n))
  return loss, metrics


def make_objective(cfg, net, *, mesh=None, total_steps):
  check(cfg)
  p, c = cfg.pairing, cfg.loss
  use_ema = p.graph_source == "ema"
  feature = "rep" if p.graph_features == "encoder" else "z"
  kw = walk_kwargs(p, mesh)

  def loss_fn(variables, state, views, key):
    out, stats = joint.forward(net, variables, views)
    alpha = pair_weight(p, state["step"], total_steps)

    if use_ema:
      g, target_stats = joint.forward(net, state["ema"], views[:2])
      g = g[feature]
      state = ema.with_stats(state, target_stats)
    else:
      g = out[feature][:2]
    g = jnp.concatenate([x.astype(jnp.float32) for x in g])
    # Drawn at every step and selected, not skipped by a lax.cond: XLA:CPU
    # does not order the collectives inside a conditional (the EMA
    # forward's BatchNorm all-reduces, the walk's gather) against those
    # outside it, and 8 emulated devices deadlocked on that.
    partners = jnp.where(alpha > 0, ops.random_walk_partners(key, g, **kw),
                         jnp.arange(g.shape[0], dtype=jnp.int32))
    loss, metrics = sag_loss(out["z"][0], out["z"][1], partners, alpha,
                             sim_coeff=c.sim_coeff, std_coeff=c.std_coeff,
                             cov_coeff=c.cov_coeff,
                             stop_partner_grad=p.stop_partner_grad)
    metrics.update(base.std_summary(jnp.concatenate(out["z"][:2]), "z"))
    return loss, base.LossAux(metrics, stats, state, out["rep"][0],
                              pairs=partners)

  ema_update = ema.updater(cfg.ema, total_steps) if use_ema else None

  def init_state(variables):
    state = {"step": jnp.int32(0)}
    if use_ema:
      state["ema"] = ema.init(variables)
    return state

  def update_state(state, variables, step):
    state = dict(state, step=jnp.asarray(step, jnp.int32) + 1)
    if ema_update is None:
      return state, {}
    return ema_update(state, variables, step)

  return base.Objective(loss_fn, init_state=init_state,
                        update_state=update_state)
