"""SSL methods, one file each (contract: `ssljax/methods/base.py`).

  net = methods.build(cfg)                        # networks (eval needs only these)
  objective = methods.get(cfg.method).make_objective(cfg, net, mesh=...,
                                                     total_steps=...)
"""

import functools

from ssljax.methods import ae
from ssljax.methods import barlow_twins
from ssljax.methods import byol
from ssljax.methods import dino
from ssljax.methods import downstream
from ssljax.methods import ijepa
from ssljax.methods import mae
from ssljax.methods import mveb
from ssljax.methods import nnclr
from ssljax.methods import rdae
from ssljax.methods import sag_vicreg
from ssljax.methods import simclr
from ssljax.methods import swav
from ssljax.methods import vicreg
from ssljax.methods.base import init_variables
from ssljax.methods.base import LossAux
from ssljax.methods.base import Objective
from ssljax.methods.base import ENCODER
from ssljax.methods.base import PROBE
from ssljax.methods.base import probe_logits
from ssljax.methods.base import sample_views
from ssljax.methods.base import split_probe

METHODS = {"ae": ae, "barlow_twins": barlow_twins, "byol": byol,
           "dino": dino, "downstream": downstream, "ijepa": ijepa, "mae": mae,
           "mveb": mveb,
           "nnclr": nnclr, "rdae": rdae,
           "sag_vicreg": sag_vicreg, "simclr": simclr, "swav": swav,
           "vicreg": vicreg}


def get(name):
  if name not in METHODS:
    raise ValueError(f"Unknown method {name!r}; valid: "
                     f"{', '.join(sorted(METHODS))}.")
  return METHODS[name]


def build(cfg):
  """The networks of cfg.method, built from cfg."""
  return get(cfg.method).build(cfg)


def init_fn(cfg, num_classes):
  """(the networks of cfg, a function of no arguments returning the
  variables a run of cfg starts from: cfg.seed's, with cfg.encoder_seed's
  encoder where set). The one recipe for every reader that rebuilds a
  run's init (ssljax-eval --step=0, export, import); train_state.init_state
  takes its seed as an argument and calls init_variables itself."""
  net = build(cfg)
  return net, functools.partial(init_variables, net, sample_views(cfg.data),
                                num_classes, cfg.seed,
                                cfg.get("encoder_seed"))
