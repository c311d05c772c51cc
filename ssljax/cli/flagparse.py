"""Command-line parsing shared by the four commands: one-line errors.

`parser(prog, doc, module)` is absl's flags parser with a bad command line
reported in one line and exit code 2 (a missing or broken --config file, a
misspelled --config.FIELD with the closest valid fields, a bad value, a
missing flag), and --help printing the command's docstring and its own
flags.
"""

import difflib
import importlib.util
import os
import re
import sys

from absl import flags

from ssljax import validate

FLAGS = flags.FLAGS

_HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "-?")


def _usage_error(prog, message):
  """absl's one-line flag error, exit 2 (a bad command line)."""
  print(f"{prog}: error: {message}", file=sys.stderr)
  sys.exit(2)


def _print_help(doc, module):
  """--help: the command's docstring and its own flags (absl's --help lists
  the flags of the console script's module, which defines none)."""
  print(doc.strip())
  print("\nFlags (--config.FIELD=VALUE overrides any field of the config; "
        "--helpfull lists every library's flags too):")
  print(FLAGS.module_help(module))


def _config_spec(argv):
  """(index, path, arg) of --config=PATH[:ARG] in argv, or None."""
  for i, a in enumerate(argv[1:], 1):
    if a == "--":
      return None
    if a.startswith("--config="):
      path, sep, arg = a[len("--config="):].partition(":")
      return i, path, (arg if sep else None)
  return None


def _load_config(prog, path, arg):
  """The config that --config=PATH[:ARG] names, or a usage error saying why
  it does not load (loaded here too so absl never buries that in a
  traceback)."""
  spec = f"{path}:{arg}" if arg is not None else path
  if not os.path.isfile(path):
    folder = os.path.dirname(path) or "."
    there = sorted(f for f in os.listdir(folder) if f.endswith(".py")) if (
        os.path.isdir(folder)) else []
    close = difflib.get_close_matches(os.path.basename(path), there, n=3)
    hint = (f" Did you mean: {', '.join(os.path.join(folder, c) for c in close)}?"
            if close else " Config files are Python files such as "
            "configs/quickstart.py.")
    _usage_error(prog, f"--config={spec}: no such file.{hint}")
  try:
    loader = importlib.util.spec_from_file_location("_ssljax_cfg", path)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    return module.get_config(arg) if arg is not None else module.get_config()
  except Exception as e:  # pylint: disable=broad-except
    msg = " ".join(str(e).split())
    _usage_error(prog, f"--config={spec}: the config does not load: "
                 f"{type(e).__name__}: {msg}")


def _resolves(cfg, dotted):
  node = cfg
  for part in dotted.split("."):
    try:
      node = node[part]
    except (KeyError, TypeError, IndexError, AttributeError):
      return False
  return True


def _bad_field(prog, argv, cfg):
  """Usage error for the first --config.FIELD override naming no field."""
  for a in argv[1:]:
    if a == "--":
      break
    if a.startswith("--config."):
      field = a.split("=", 1)[0][len("--config."):]
      if cfg is not None and not _resolves(cfg, field):
        close = validate.closest_fields(cfg, field)
        hint = (f" Closest valid fields: {', '.join(close)}." if close else
                " Valid fields: see the config file.")
        _usage_error(prog, f"--config.{field}: no such config field.{hint}")


def _flag_error(prog, error, cfg):
  """absl's flag error (bad value, missing or unknown flag) in one line."""
  message = "; ".join(" ".join(line.split())
                      for line in str(error).splitlines() if line.strip())
  m = re.search(r"Flag --(\w+) must have a value other than None", message)
  if m:
    what = {"workdir": "the folder for checkpoints, metrics and the summary, "
                       "e.g. --workdir=/tmp/run1",
            "config": "a config file, e.g. --config=configs/quickstart.py"}
    _usage_error(prog, f"--{m.group(1)} is required: pass "
                 f"{what.get(m.group(1), 'a value')}.")
  m = re.match(r"flag --config\.([\w.]+)=", message)
  if m and cfg is not None and _resolves(cfg, m.group(1)):
    node = cfg
    for part in m.group(1).split("."):
      node = node[part]
    kind = type(node).__name__
    article = "an" if kind[0] in "aeiou" else "a"
    message += (f"; config field {m.group(1)} takes {article} {kind} "
                f"(default {node!r}).")
  _usage_error(prog, message.removeprefix("flag "))


def parser(prog, doc, module):
  """absl's flags parser for command `prog`, with one-line errors (exit 2)
  for a bad command line: a config file that is missing or does not load,
  a misspelled config field (with the closest valid fields), a bad value, a
  missing flag. Expands `~` in --config=~/x.py (no shell does after `=`).
  --help prints `doc` and the flags `module` defines, and exits 0."""

  def parse_flags(argv):
    argv = list(argv)
    before_dashes = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    if any(a in _HELP_ARGS for a in before_dashes):
      _print_help(doc, module)
      sys.exit(0)
    cfg = None
    spec = _config_spec(argv)
    if spec:
      i, path, arg = spec
      path = os.path.expanduser(path)
      argv[i] = f"--config={path}" + (f":{arg}" if arg is not None else "")
      cfg = _load_config(prog, path, arg)
    saved, sys.argv = sys.argv, argv  # config_flags reads the overrides
    try:
      return FLAGS(argv)
    except (KeyError, AttributeError):
      _bad_field(prog, argv, cfg)
      raise
    except flags.Error as e:
      _bad_field(prog, argv, cfg)
      _flag_error(prog, e, cfg)
    finally:
      sys.argv = saved

  return parse_flags
