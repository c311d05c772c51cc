"""Rate-distortion auto-encoder (Sanchez Giraldo & Principe, ICLR 2014,
arXiv 1312.7381): minimize the information between input and
reconstruction subject to a distortion constraint, with the matrix-based
Rényi entropies of `ssljax.entropy` (no density estimate).

Network: an MLP auto-encoder with softplus units on flattened images, as
the paper's over-complete auto-encoders with soft rectified units. Input x
= the first `channels` channels of the view, flattened to D_in = S·S·C
(1 for grey datasets stored as RGB such as mnist5k, 2 for `spiral2d`).
Encoder: Dense + softplus for each width of `widths` ("2048" or
"1024-2048"); the last is the code h, what the probes evaluate. Decoder:
the hidden widths mirrored (Dense + softplus), then a linear Dense to D_in.
The paper's setting is over-complete (code wider than the input); widths
are not checked against D_in, so under-complete nets work too. The MLP
computes in float32; cfg.model is not used (training reads only its dtype,
for the views).

Objective on a batch of n (the global batch), with x̂ = f(x̃):
  R = I_α(X; X̂) = S_α(A_X) + S_α(A_X̂) − S_α(A_X, A_X̂)   (bits, `entropy`)
  D = mean_i ‖x_i − x̂_i‖²   (summed over the D_in inputs; recon_mse = D/D_in)
  L = (R + λ·(D − D₀)) / (1 + λ)
  schedule "fixed":      λ = `lagrange` throughout, D₀ = 0
  schedule "constraint": D₀ = `target`; λ is a dual variable in the method
      state, after every step multiplied by exp(η·clip((D − D₀)/D₀, −1,
      1)), η = `dual_lr`, and kept in LAGRANGE_RANGE (multiplicative dual
      ascent as GECO, Rezende & Viola 2018: λ stays > 0, grows while the
      constraint is violated, moves by at most a factor e^η a step)
The 1/(1 + λ) makes L a convex combination of the rate and the distortion
terms: for a fixed λ it is a constant factor (Adam is nearly invariant to
it), and under the dual update it keeps gradients bounded when λ is large
(early in training D ≫ D₀ and λ grows: without it Adam's second moments
would record gradients ~λ and stall every later step).
Minimizing R over the parameters is maximizing S(X | X̂) = S(X) − R: S(X)
depends on the data only (the paper's form). Both Grams use one Gaussian
kernel whose σ comes from the clean input batch (`bandwidth`: "median",
the median pairwise distance; "silverman"; or "fixed" = `sigma`), times
`sigma_scale`, without gradient: x̂ lives in the input space, and a σ taken
from X̂ would let the network shrink or spread X̂ to game the rate. α = 2
(default) uses the Frobenius path: no eigendecomposition, O(n²). The
paper leaves α, σ and widths unpublished; these defaults are this
project's choice.

Baselines on the same network and training: rate = "none" drops R and λ (a
plain auto-encoder, L = D), and `noise_std` > 0 feeds x̃ = x + N(0, σ_n² I)
(normalized units) while reconstructing the clean x: with rate "none", a
Gaussian-denoising auto-encoder.
Metrics: loss, rate, distortion, recon_mse, entropy_x, entropy_xhat,
joint_entropy, sigma, lagrange.
The paper trains on mini-batches from pre-clustered data so each batch
keeps local structure: the data option `data.cluster` (ssljax.data.
clustered) does that.
"""

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from ssljax import entropy
from ssljax.methods import base
from ssljax.models import heads

BANDWIDTHS = entropy.BANDWIDTHS + ("fixed",)
RATES = ("mutual_information", "none")
SCHEDULES = ("fixed", "constraint")
LAGRANGE_RANGE = (1e-6, 1e6)  # bounds of the dual λ: ln(1e12)/η steps span them


def default_config():
  return ml_collections.ConfigDict(dict(rdae=dict(
      widths="2048", channels=3, alpha=2.0, bandwidth="median",
      sigma_scale=1.0, sigma=1.0, rate="mutual_information",
      schedule="fixed", lagrange=0.01, target=1.0, dual_lr=0.01,
      noise_std=0.0)))


class AutoEncoder(nn.Module):
  """Softplus MLP auto-encoder on the first `channels` image channels."""
  widths: Sequence[int]
  input_dim: int
  channels: int = 3

  def setup(self):
    self.enc = [nn.Dense(w, name=f"enc{i + 1}")
                for i, w in enumerate(self.widths)]
    self.dec = [nn.Dense(w, name=f"dec{i + 1}")
                for i, w in enumerate(self.widths[-2::-1])]
    self.out = nn.Dense(self.input_dim, name="out")

  def flatten(self, images):
    """[n, S, S, 3] -> float32 [n, S·S·channels]."""
    x = images[..., :self.channels].astype(jnp.float32)
    return x.reshape(x.shape[0], -1)

  def encode(self, x_flat):
    """Every encoder layer's softplus output; the last is the code."""
    hs, h = [], x_flat
    for layer in self.enc:
      h = nn.softplus(layer(h))
      hs.append(h)
    return hs

  def decode(self, code):
    h = code
    for layer in self.dec:
      h = nn.softplus(layer(h))
    return self.out(h)

  def reconstruct(self, x_flat):
    """f(x) on flattened inputs: what the energy ‖x − f(x)‖² is made of."""
    return self.decode(self.encode(x_flat)[-1])

  def __call__(self, views, train=True):
    """(code, x̂) of views[0]; x̂ flattened like `flatten`."""
    del train
    code = self.encode(self.flatten(views[0]))[-1]
    return code, self.decode(code)

  def represent(self, x, layers=False):
    hs = self.encode(self.flatten(x))
    out = {"rep": hs[-1]}
    if layers:
      out.update({f"enc{i + 1}": h for i, h in enumerate(hs[:-1])})
    return out


def check(c):
  """Raises ValueError naming every invalid field of cfg.rdae."""
  problems = []
  try:
    heads.parse_spec(c.widths)
  except ValueError as e:
    problems.append(f"rdae.widths: {e}")
  if c.channels not in (1, 2, 3):
    problems.append(f"rdae.channels = {c.channels!r}; valid: 1, 2, 3.")
  if not isinstance(c.alpha, (int, float)) or not c.alpha > 0:
    problems.append(f"rdae.alpha = {c.alpha!r}: must be > 0 (2.0: "
                    "Frobenius path; 1.0: von Neumann).")
  for field, valid in (("bandwidth", BANDWIDTHS), ("rate", RATES),
                       ("schedule", SCHEDULES)):
    if c[field] not in valid:
      problems.append(f"Unknown rdae.{field} {c[field]!r}; valid: "
                      f"{', '.join(valid)}.")
  positive = ["sigma_scale"] + (["sigma"] if c.bandwidth == "fixed" else [])
  if c.schedule == "constraint":
    positive.append("target")
    lo, hi = LAGRANGE_RANGE
    if not lo <= c.lagrange <= hi:  # λ is multiplied: it must start > 0
      problems.append(f"rdae.lagrange = {c.lagrange!r}: the initial dual "
                      f"variable must be in [{lo:g}, {hi:g}].")
  for field in positive:
    if not c[field] > 0:
      problems.append(f"rdae.{field} = {c[field]!r}: must be > 0.")
  for field in ("lagrange", "dual_lr", "noise_std"):
    if c[field] < 0:
      problems.append(f"rdae.{field} = {c[field]!r}: must be ≥ 0.")
  if problems:
    raise ValueError(" ".join(problems))


def build(cfg):
  c = cfg.rdae
  check(c)
  return AutoEncoder(heads.parse_spec(c.widths),
                     cfg.data.image_size ** 2 * c.channels, c.channels)


def kernel_width(x_nd, c):
  """σ of the Gaussian kernel for a clean input batch (no gradient)."""
  if c.bandwidth == "fixed":
    sigma = jnp.float32(c.sigma)
  else:
    sigma = entropy.bandwidth(x_nd, c.bandwidth)
  return jax.lax.stop_gradient(c.sigma_scale * sigma)


def rate_terms(x_nd, x_hat_nd, sigma, alpha):
  """{entropy_x, entropy_xhat, joint_entropy, rate} in bits for inputs and
  reconstructions [n, D_in] under one Gaussian kernel of width σ."""
  kx = entropy.gram(x_nd, sigma)
  kxh = entropy.gram(x_hat_nd, sigma)
  s_x = entropy.matrix_entropy(kx, alpha)
  s_xh = entropy.matrix_entropy(kxh, alpha)
  s_joint = entropy.matrix_joint_entropy(kx, kxh, alpha)
  return {"entropy_x": s_x, "entropy_xhat": s_xh, "joint_entropy": s_joint,
          "rate": s_x + s_xh - s_joint}


def distortion(x_nd, x_hat_nd):
  """mean_i ‖x_i − x̂_i‖², float32."""
  return jnp.mean(jnp.sum(jnp.square(x_hat_nd.astype(jnp.float32)
                                     - x_nd.astype(jnp.float32)), axis=-1))


def make_objective(cfg, net, *, mesh=None, total_steps=None):
  del mesh, total_steps
  c = cfg.rdae
  check(c)
  alpha = float(c.alpha)

  def loss_fn(variables, state, views, key):
    x = net.apply(variables, views[0], method="flatten")
    x_in = x + c.noise_std * jax.random.normal(key, x.shape, x.dtype)
    code = net.apply(variables, x_in, method="encode")[-1]
    x_hat = net.apply(variables, code, method="decode")
    d = distortion(x, x_hat)
    sigma = kernel_width(x, c)
    metrics = {"distortion": d, "recon_mse": d / x.shape[-1], "sigma": sigma,
               "lagrange": state["lagrange"]}
    if c.rate == "mutual_information":
      terms = rate_terms(x, x_hat, sigma, alpha)
      metrics.update(terms)
      lam = jax.lax.stop_gradient(state["lagrange"])
      offset = c.target if c.schedule == "constraint" else 0.0
      loss = (terms["rate"] + lam * (d - offset)) / (1.0 + lam)
    else:
      loss = d
    metrics["loss"] = loss
    new_state = dict(state, distortion=jax.lax.stop_gradient(d))
    return loss, base.LossAux(metrics, variables.get("batch_stats", {}),
                              new_state, code)

  def init_state(variables):
    del variables
    return {"lagrange": jnp.float32(c.lagrange),
            "distortion": jnp.float32(0.0)}

  def update_state(state, variables, step):
    del variables, step
    if c.schedule != "constraint" or c.rate == "none":
      return state, {}
    violation = jnp.clip((state["distortion"] - c.target) / c.target, -1, 1)
    lam = jnp.clip(state["lagrange"] * jnp.exp(c.dual_lr * violation),
                   *LAGRANGE_RANGE)
    return dict(state, lagrange=lam), {}

  return base.Objective(loss_fn, init_state, update_state)
