"""Probes on frozen features: weighted kNN and the offline linear probe.

  knn_accuracy   weighted cosine kNN (InstDisc / DINO / MVEB monitor)
  linear_probe   L2-regularized multinomial logistic regression, strength
                 chosen on a held-out part of train, then refit on all of it

Memory of kNN is O(chunk × n_train): test points are processed in chunks.
Inputs may be sharded jax arrays; the computations are plain jnp under jit.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ssljax.evals.geometry import num_classes_of
from ssljax.ops import l2_normalize


def _l2n(x):
  return l2_normalize(jnp.asarray(x, jnp.float32))


@functools.partial(jax.jit, static_argnames=("ks", "num_classes", "chunk"))
def _knn_correct(train_x, train_y, test_x, test_y, temperature, *, ks,
                 num_classes, chunk):
  n_test = test_x.shape[0]
  pad = (-n_test) % chunk
  test_x = jnp.pad(test_x, ((0, pad), (0, 0))).reshape(-1, chunk,
                                                       test_x.shape[1])
  test_y = jnp.pad(test_y, (0, pad), constant_values=-1).reshape(-1, chunk)
  kmax = max(ks)

  def one_chunk(args):
    x, y = args
    sim, idx = jax.lax.top_k(x @ train_x.T, kmax)  # [chunk, kmax], sorted
    w = jnp.exp(sim / temperature)
    onehot = jax.nn.one_hot(train_y[idx], num_classes) * w[..., None]
    votes = jnp.cumsum(onehot, axis=1)  # votes of the top-k for every k
    return jnp.stack([(votes[:, k - 1].argmax(-1) == y).sum() for k in ks])

  return jax.lax.map(one_chunk, (test_x, test_y)).sum(0)


def knn_accuracy(train_x, train_y, test_x, test_y, *, k=20, temperature=0.07,
                 num_classes=None, chunk=256):
  """Fraction of test points whose weighted top-k vote is correct.

  Cosine similarity on L2-normalized features; each of the k nearest train
  points votes for its label with weight exp(sim / temperature); the class
  with the largest total wins (ties: lowest class index). `k` may be a tuple:
  then a dict {k: accuracy} is returned, all from one top-max(k) search.
  """
  ks = tuple(k) if isinstance(k, (tuple, list)) else (k,)
  train_y = jnp.asarray(train_y, jnp.int32)
  num_classes = num_classes or num_classes_of(train_y, test_y)
  if max(ks) > len(train_y):
    raise ValueError(f"k={max(ks)} exceeds the {len(train_y)} train points.")
  correct = _knn_correct(_l2n(train_x), train_y, _l2n(test_x),
                         jnp.asarray(test_y, jnp.int32),
                         jnp.float32(temperature), ks=ks,
                         num_classes=num_classes, chunk=chunk)
  acc = {kk: float(c) / len(test_y) for kk, c in zip(ks, np.asarray(correct))}
  return acc if isinstance(k, (tuple, list)) else acc[ks[0]]


@functools.partial(jax.jit, static_argnames=("steps",))
def _fit_logreg(x, y, l2, params, *, steps, tol=1e-4):
  """Full-batch L-BFGS on mean cross-entropy + l2/2·‖W‖² (bias unpenalized)
  from `params`, until max|∇| < tol (sklearn's criterion) or `steps`."""

  def objective(p):
    logits = x @ p[0] + p[1]
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return ce + 0.5 * l2 * jnp.sum(jnp.square(p[0]))

  opt = optax.lbfgs()
  value_and_grad = optax.value_and_grad_from_state(objective)

  def body(carry):
    p, state, _, i = carry
    value, grad = value_and_grad(p, state=state)
    updates, state = opt.update(grad, state, p, value=value, grad=grad,
                                value_fn=objective)
    gmax = jnp.maximum(jnp.abs(grad[0]).max(), jnp.abs(grad[1]).max())
    return optax.apply_updates(p, updates), state, gmax, i + 1

  def cond(carry):
    return (carry[3] < steps) & (carry[2] > tol)

  init = (params, opt.init(params), jnp.float32(jnp.inf), 0)
  return jax.lax.while_loop(cond, body, init)[0]


def _accuracy(params, x, y):
  return float(jnp.mean((x @ params[0] + params[1]).argmax(-1) == y))


def linear_probe(train_x, train_y, test_x, test_y, *,
                 l2_grid=(1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1), holdout=0.2,
                 steps=300, seed=0):
  """Linear probe with the standard offline protocol.

  Features are standardized with train statistics. For each L2 strength in
  `l2_grid` a multinomial logistic regression is fit (full-batch L-BFGS) on
  (1 - holdout) of train and scored on the held-out rest; the best strength
  is refit on all of train and scored on test. L-BFGS's line search sets
  the step size, so there is no learning rate to choose. Fits stop at
  max|∇| < 1e-4 or `steps` iterations, and the grid is walked from strong to
  weak L2, each fit warm-started from the previous solution (the
  regularization path).

  Returns dict: test_accuracy, train_accuracy, l2, holdout_accuracy.
  """
  train_x = jnp.asarray(train_x, jnp.float32)
  test_x = jnp.asarray(test_x, jnp.float32)
  train_y = jnp.asarray(train_y, jnp.int32)
  test_y = jnp.asarray(test_y, jnp.int32)
  mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
  train_x, test_x = (train_x - mu) / sd, (test_x - mu) / sd
  num_classes = num_classes_of(train_y, test_y)
  perm = np.random.default_rng(seed).permutation(len(train_y))
  n_hold = int(len(perm) * holdout)
  hold, fit = perm[:n_hold], perm[n_hold:]
  p = (jnp.zeros((train_x.shape[1], num_classes)), jnp.zeros((num_classes,)))
  scores, path = {}, {}
  for l2 in sorted(l2_grid, reverse=True):
    p = _fit_logreg(train_x[fit], train_y[fit], jnp.float32(l2), p,
                    steps=steps)
    scores[l2], path[l2] = _accuracy(p, train_x[hold], train_y[hold]), p
  best = max(l2_grid, key=lambda l2: (scores[l2], l2))  # ties: stronger L2
  p = _fit_logreg(train_x, train_y, jnp.float32(best), path[best],
                  steps=steps)
  return {"test_accuracy": _accuracy(p, test_x, test_y),
          "train_accuracy": _accuracy(p, train_x, train_y),
          "l2": best, "holdout_accuracy": scores[best]}
