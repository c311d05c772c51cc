"""Optimizers and schedules (optax).

Learning rate = base_lr × global_batch / 256, linear warm-up from
`warmup_start_factor`·lr, then cosine decay to `end_factor`·lr.
Weight decay (and, for LARS, the trust-ratio adaptation) applies only to
kernels: biases and normalization scales/offsets (all ≤1-D parameters) are
excluded, as in the LARS recipes of BYOL, VICReg and MVEB. `bias_lr_scale`
multiplies the learning rate of those excluded parameters (Barlow Twins'
official recipe: 0.0048 / 0.2 = 0.024; default 1). `weight_decay_end`
(None: constant) makes the weight decay a cosine from `weight_decay` to
it over the run, as DINO's and I-JEPA's `wd_scheduler` (0.04 -> 0.4).
`lars_lr_after_momentum` (default False: optax.lars, which scales by the
learning rate before the momentum buffer) applies the current learning
rate to the whole momentum buffer, as the official LARS of VICReg, Barlow
Twins and MVEB (and torch SGD) do: the two differ whenever the rate
changes, i.e. through all of warm-up and cosine decay; the paper-recipe
configs set it.
`cosine_over_total` (default False: the cosine runs from the end of the
warm-up to the last step, reaching end_factor·lr) takes the cosine's phase
as π·(t − warm-up)/T over all T steps, as MVEB's official adjust_lr: the
rate then ends above end_factor·lr (at cos(π(1 − warm-up/T))).
`warmup_linspace` (default False) makes the warm-up's rates
linspace(start, lr, warm-up steps): the peak at its last step, as SwAV's
np.linspace schedule. name "larc": apex's LARC (clip False) over SGD with
momentum on every parameter, biases and norms included (`scale_by_larc`;
SwAV's official optimizer), the rate applied after the momentum;
`larc_clip` (False) caps the trust ratio at the rate (apex's clip=True)
and `larc_exclude_bias_norm` (False) leaves biases and norms unadapted and
undecayed: with both, solo-learn's LARS (its NNCLR recipe's).
`clip_per_param` (0: off) rescales each parameter's gradient to that L2
norm when larger (DINO's `clip_gradients`, norm 3, with its 1e-6), where
`clip_norm` clips the global norm.
"""

import jax
import optax

OPTIMIZERS = ("lars", "larc", "adamw", "sgd")


def peak_lr(cfg, global_batch):
  return cfg.base_lr * global_batch / 256


def schedule(cfg, global_batch, total_steps, steps_per_epoch):
  lr = peak_lr(cfg, global_batch)
  warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
  start, end = cfg.warmup_start_factor * lr, cfg.end_factor * lr
  over_total = cfg.get("cosine_over_total", False)
  linspace = cfg.get("warmup_linspace", False)
  if over_total or linspace:
    jnp = jax.numpy
    span = max(total_steps, 1) if over_total else max(total_steps - warmup, 1)
    ramp = max(warmup - 1 if linspace else warmup, 1)

    def lr_fn(t):
      # start + (lr − start)·t/ramp, not optax.linear_schedule's (start −
      # lr)·(1 − t/ramp) + lr: in float32 that cancels to 1.8751249e-5 for
      # 1.875e-5 at t = 0 (MVEB's 1e-3·lr start; 6.7e-5 relative).
      t = jnp.asarray(t, jnp.result_type(float))
      cosine = end + 0.5 * (lr - end) * (1 + jnp.cos(
          jnp.pi * jnp.minimum(t - warmup, span) / span))
      return jnp.where(t < warmup, start + (lr - start) * t / ramp, cosine)
    return lr_fn
  return optax.warmup_cosine_decay_schedule(
      init_value=start, peak_value=lr,
      warmup_steps=warmup, decay_steps=max(total_steps, warmup + 1),
      end_value=end)


def weight_decay(cfg, total_steps):
  """A float, or a cosine schedule from weight_decay to weight_decay_end."""
  start, end = cfg.weight_decay, cfg.get("weight_decay_end")
  if end is None:
    return start
  t = max(total_steps, 1)
  # Not optax.cosine_decay_schedule: it takes alpha = end / start, so it
  # cannot start from 0 (or rise from a zero start).
  return lambda step: end + 0.5 * (start - end) * (
      1 + jax.numpy.cos(jax.numpy.pi * jax.numpy.minimum(step, t) / t))


def clip_per_param(max_norm):
  """DINO's utils.clip_gradients: g · min(1, max_norm / (‖g‖ + 1e-6)) for
  each parameter separately."""
  def clip(g):
    coef = max_norm / (jax.numpy.linalg.norm(g.reshape(-1)) + 1e-6)
    return g * jax.numpy.minimum(coef, 1.0).astype(g.dtype)
  return optax.stateless_with_tree_map(lambda g, _: clip(g))


def kernel_mask(params):
  """True for weight matrices / conv kernels (and tokens), False for biases
  and norm parameters: what weight decay and LARS adaptation apply to, as
  the reference codes exclude 1-D parameters and every `.bias`. By name as
  well as rank because Flax stores attention biases as [heads, head_dim]."""
  def is_kernel(path, p):
    last = path[-1]
    name = getattr(last, "key", getattr(last, "name", None))
    return p.ndim > 1 and name != "bias"
  return jax.tree_util.tree_map_with_path(is_kernel, params)


def scale_by_larc(weight_decay, trust_coefficient, eps=1e-8, clip_lr=None,
                  exclude_bias_norm=False):
  """apex's LARC around SGD's weight decay: where ‖p‖ > 0 and ‖g‖ > 0,
  u = (g + wd·p)·r with r = η‖p‖ / (‖g‖ + wd·‖p‖ + eps); elsewhere u = g,
  without weight decay (a zero gradient, e.g. a frozen parameter's, stays
  zero). `clip_lr` (a schedule; None: clip=False): r ← min(r / lr_t, 1),
  apex's clip=True and solo-learn's LARS `clip_lr`. `exclude_bias_norm`:
  biases and norm parameters (not `kernel_mask`) get u = g, solo-learn's
  `exclude_bias_n_norm`; otherwise every parameter is adapted (SwAV's)."""
  jnp = jax.numpy

  def update(updates, state, params):
    rate_t = None if clip_lr is None else clip_lr(state.count)

    def one(g, p, adapt):
      p_norm, g_norm = jnp.linalg.norm(p), jnp.linalg.norm(g)
      rate = trust_coefficient * p_norm / (g_norm + weight_decay * p_norm
                                           + eps)
      if rate_t is not None:  # lr_t = 0 (warm-up from 0): r / 0 = inf -> 1
        rate = jnp.minimum(rate / rate_t, 1.0)
      scaled = (g + weight_decay * p) * rate.astype(g.dtype)
      return jnp.where(adapt & (p_norm > 0) & (g_norm > 0), scaled, g)
    adapt = (kernel_mask(params) if exclude_bias_norm else
             jax.tree.map(lambda _: True, params))
    if clip_lr is not None:
      state = optax.ScaleByScheduleState(
          count=optax.safe_increment(state.count))
    return jax.tree.map(one, updates, params, adapt), state

  def init(params):
    del params  # a step count only where the clip reads the rate
    return (optax.EmptyState() if clip_lr is None else
            optax.ScaleByScheduleState(count=jnp.zeros([], jnp.int32)))
  return optax.GradientTransformation(init, update)


def make(cfg, global_batch, total_steps, steps_per_epoch):
  """optax optimizer from cfg: name, base_lr, weight_decay, momentum,
  trust_coefficient, lars_lr_after_momentum, warmup_epochs,
  warmup_start_factor, end_factor, clip_norm (None or 0: no clipping), for
  adamw b1, b2 (default 0.9, 0.999; MAE uses b2 = 0.95), for sgd nesterov (default False; BYOL's
  linear evaluation uses it)."""
  lr = schedule(cfg, global_batch, total_steps, steps_per_epoch)
  wd = weight_decay(cfg, total_steps)
  if cfg.name == "lars" and cfg.get("lars_lr_after_momentum", False):
    tx = optax.chain(
        optax.add_decayed_weights(wd, mask=kernel_mask),
        optax.masked(optax.scale_by_trust_ratio(
            trust_coefficient=cfg.trust_coefficient), kernel_mask),
        optax.trace(decay=cfg.momentum),
        optax.scale_by_learning_rate(lr))
  elif cfg.name == "lars":
    tx = optax.lars(lr, weight_decay=wd,
                    weight_decay_mask=kernel_mask,
                    trust_coefficient=cfg.trust_coefficient,
                    trust_ratio_mask=kernel_mask, momentum=cfg.momentum)
  elif cfg.name == "larc":
    if callable(wd):
      raise ValueError("optimizer.name = 'larc' takes a constant "
                       "weight_decay; unset optimizer.weight_decay_end.")
    tx = optax.chain(scale_by_larc(
        wd, cfg.trust_coefficient,
        clip_lr=lr if cfg.get("larc_clip", False) else None,
        exclude_bias_norm=cfg.get("larc_exclude_bias_norm", False)),
                     optax.trace(decay=cfg.momentum),
                     optax.scale_by_learning_rate(lr))
  elif cfg.name == "adamw":
    tx = optax.adamw(lr, b1=cfg.get("b1", 0.9), b2=cfg.get("b2", 0.999),
                     weight_decay=wd, mask=kernel_mask)
  elif cfg.name == "sgd":
    tx = optax.chain(
        optax.add_decayed_weights(wd, mask=kernel_mask),
        optax.sgd(lr, momentum=cfg.momentum,
                  nesterov=cfg.get("nesterov", False)))
  else:
    raise ValueError(f"Unknown optimizer {cfg.name!r}; valid: "
                     f"{', '.join(OPTIMIZERS)}.")
  scale = cfg.get("bias_lr_scale", 1.0)
  if scale != 1.0:  # the update is linear in the lr: a per-group lr
    not_kernel = lambda p: jax.tree.map(lambda k: not k, kernel_mask(p))
    tx = optax.chain(tx, optax.masked(optax.scale(scale), not_kernel))
  if cfg.get("clip_norm"):
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), tx)
  if cfg.get("clip_per_param"):
    tx = optax.chain(clip_per_param(cfg.clip_per_param), tx)
  return tx, lr
