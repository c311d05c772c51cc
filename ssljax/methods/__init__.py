"""SSL methods, one file each. `get(name)` returns the method's module."""

from ssljax.methods import byol
from ssljax.methods import mveb
from ssljax.methods import simclr
from ssljax.methods import vicreg
from ssljax.methods.base import SSLModel

METHODS = {"byol": byol, "mveb": mveb, "simclr": simclr, "vicreg": vicreg}


def get(name):
  if name not in METHODS:
    raise ValueError(f"Unknown method {name!r}; valid: "
                     f"{', '.join(sorted(METHODS))}.")
  return METHODS[name]
