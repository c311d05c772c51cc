"""README.md cannot drift from the code.

For every shell command in README's ```bash blocks: each
`--config=configs/X.py[:ARG]` exists and its `get_config(ARG)` runs, and
each `--config.FIELD=...` names a field of that config; each
`python -m ssljax.X` module and each file path (`benchmarks/X.py`,
`launch/tpu.py`, `notebooks/X.ipynb`, ...) exists; each
`ssljax-*` program is a console script of setup.py; each `--flag` given to
`ssljax-train` / `ssljax-eval` is one of that program's absl flags (as its
`--helpfull` lists them). Also: README.md has at most 250 lines, and every
relative link in it points to an existing file (and, for `page.md#anchor`,
to a heading of that page). The checks run on text, so the last tests
feed them a README with known faults and expect each one reported.
"""

import functools
import importlib.util
import pathlib
import re
import shlex
import subprocess
import sys
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_LINES = 250

# The module whose absl flags each console script parses (ssljax.cli.train
# defines them at import; the others when run as a program).
FLAG_MODULES = {"ssljax-train": "ssljax.cli.train",
                "ssljax-eval": "ssljax.cli.eval",
                "ssljax-export": "ssljax.cli.export",
                "ssljax-import": "ssljax.cli.import_"}
SEPARATORS = {"&&", "||", ";", "|"}


def bash_blocks(text):
  return re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M)


def commands(block):
  """The simple commands of a bash block: lists of words, comments gone,
  `\\` continuations joined, split at && || ; |, leading VAR=value gone."""
  out = []
  for line in block.replace("\\\n", " ").splitlines():
    lex = shlex.shlex(line, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    words = list(lex)
    cmd = []
    for w in words + [";"]:
      if w in SEPARATORS:
        while cmd and re.fullmatch(r"[A-Za-z_]\w*=.*", cmd[0]):
          cmd.pop(0)
        if cmd:
          out.append(cmd)
        cmd = []
      else:
        cmd.append(w)
  return out


def console_scripts():
  """Names of the console scripts declared in setup.py (and pyproject.toml
  if there is one)."""
  names = set()
  for f in ("setup.py", "pyproject.toml"):
    p = ROOT / f
    if p.exists():
      names |= set(re.findall(r"""["']?(ssljax-[\w-]+)["']?\s*=\s*["']?ssljax[\w.]*:""",
                              p.read_text()))
  return names


@functools.lru_cache(maxsize=None)
def absl_flags(module):
  """Flag names (without `--`) that `python -m MODULE --helpfull` lists;
  booleans also as `noNAME`."""
  r = subprocess.run([sys.executable, "-m", module, "--helpfull"],
                     capture_output=True, text=True, cwd=ROOT, timeout=120)
  found = re.findall(r"^  (?:-\w,)?--(\[no\])?([\w.-]+):", r.stdout + r.stderr,
                     re.M)
  names = set()
  for no, name in found:
    names.add(name)
    if no:
      names.add("no" + name)
  assert "workdir" in names, (module, r.returncode, r.stdout[-2000:],
                              r.stderr[-2000:])
  return names


def _norm(path):
  return re.sub(r"^(\$HOME|\$\{HOME\}|~)(?=/)", "~", path)


@functools.lru_cache(maxsize=None)
def load_config(path, arg):
  spec = importlib.util.spec_from_file_location(
      "_readme_cfg_" + re.sub(r"\W", "_", f"{path}_{arg}"), ROOT / path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config(arg)


def has_field(cfg, dotted):
  node = cfg
  for part in dotted.split("."):
    try:
      node = node[part]
    except (KeyError, TypeError, AttributeError):
      return False
  return True


def check_commands(text, root=ROOT, scripts=None, flags=absl_flags):
  """Problems (strings) of the commands in `text`'s bash blocks."""
  scripts = console_scripts() if scripts is None else scripts
  problems = []
  for block in bash_blocks(text):
    cmds = commands(block)
    copies = {}  # forked configs: destination -> source (cp SRC DST)
    for c in cmds:
      if c[0] == "cp" and len(c) == 3:
        copies[_norm(c[2])] = c[1]
    for c in cmds:
      where = " ".join(c)
      prog = c[0]
      if prog.startswith("ssljax-") and prog not in scripts:
        problems.append(f"{prog}: not a console script of setup.py ({where})")
      if prog in ("python", "python3") and len(c) > 2 and c[1] == "-m":
        mod = c[2]
        if mod.split(".")[0] == "ssljax":
          rel = pathlib.Path(*mod.split("."))
          if not ((root / rel).with_suffix(".py").exists()
                  or (root / rel / "__init__.py").exists()):
            problems.append(f"python -m {mod}: no such module ({where})")
      for w in c:  # repository files named as words: scripts, notebooks, ...
        if (re.fullmatch(r"[\w.-]+(/[\w.-]+)+\.(py|ipynb|yaml|md)", w)
            and not (root / w).exists()):
          problems.append(f"{w}: no such file ({where})")
      cfg = None
      for w in c:
        m = re.fullmatch(r"--config=([^:]+)(?::(.*))?", w)
        if not m:
          continue
        path, arg = m.group(1), m.group(2)
        path = copies.get(_norm(path), path)
        if not (root / path).exists():
          problems.append(f"--config={path}: no such file ({where})")
          continue
        try:
          cfg = load_config(path, arg)
        except Exception as e:  # pylint: disable=broad-except
          problems.append(f"--config={path}:{arg}: get_config raised "
                          f"{type(e).__name__}: {e} ({where})")
      for w in c:
        m = re.fullmatch(r"--config\.([\w.]+)(=.*)?", w)
        if m and cfg is not None and not has_field(cfg, m.group(1)):
          problems.append(f"--config.{m.group(1)}: no such config field "
                          f"({where})")
      if prog in FLAG_MODULES:
        known = flags(FLAG_MODULES[prog])
        for w in c[1:]:
          if w == "--":
            break
          m = re.fullmatch(r"--([\w-]+)(=.*)?", w)
          if m and m.group(1) not in known:
            problems.append(f"{prog} --{m.group(1)}: no such flag ({where})")
  return problems


def slug(heading):
  """The anchor Python-Markdown's toc (MkDocs) gives a heading."""
  text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
  text = text.replace("`", "").replace("*", "")
  text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
  text = re.sub(r"[^\w\s-]", "", text).strip().lower()
  return re.sub(r"[-\s]+", "-", text)


def anchors(md_text):
  text = re.sub(r"^```.*?^```", "", md_text, flags=re.S | re.M)
  return {slug(h) for h in re.findall(r"^#{1,6}\s+(.*?)\s*#*$", text, re.M)}


def check_links(text, base=ROOT):
  problems = []
  text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
  for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", text):
    if re.match(r"[a-z][\w+.-]*:", target) or target.startswith("#"):
      continue
    path, _, anchor = target.partition("#")
    f = base / path
    if not f.exists():
      problems.append(f"{target}: no such file")
    elif anchor and f.suffix == ".md" and anchor not in anchors(f.read_text()):
      problems.append(f"{target}: {path} has no heading #{anchor}")
  return problems


def test_readme_is_short():
  n = len(README.read_text().splitlines())
  assert n <= MAX_LINES, f"README.md has {n} lines; at most {MAX_LINES}"


def test_readme_has_the_two_commands():
  text = README.read_text()
  for cmd in ("pip install -e . && ssljax-train --config=configs/quickstart.py"
              " --workdir=/tmp/ssljax_quickstart",
              'pip install -e ".[test]" && python -m pytest -n auto -q tests'):
    assert cmd in text


def test_ci_runs_the_readme_test_command():
  assert ('pip install -e ".[test]" && python -m pytest -n auto -q tests'
          in (ROOT / ".ci" / "run").read_text().splitlines())


def test_readme_commands_name_what_exists():
  text = README.read_text()
  assert bash_blocks(text), "no ```bash block in README.md"
  assert check_commands(text) == []


def test_readme_links_point_to_files():
  assert check_links(README.read_text()) == []


def test_every_console_script_has_its_flag_module():
  assert console_scripts() and console_scripts() <= set(FLAG_MODULES)


# The checkers themselves: a README with one fault of each kind.
BAD = """
[gone](docs/no_such_page.md) [anchor](docs/getting-started.md#no-such-heading)
[fine](docs/getting-started.md#fork-a-config-for-an-ablation)

```bash
ssljax-train --config=configs/no_such.py --workdir=/tmp/x
ssljax-train --config=configs/quickstart.py:no_such_dataset --workdir=/tmp/x
ssljax-train --config=configs/quickstart.py --config.no_such_field=1 --workdir=/tmp/x
ssljax-train --config=configs/quickstart.py --no_such_flag --workdir=/tmp/x
ssljax-frobnicate --workdir=/tmp/x
python -m ssljax.experiments.no_such --workdir=/tmp/x
python benchmarks/no_such.py   # a comment --not_a_flag
jupyter lab notebooks/no_such.ipynb
mkdir -p ~/a && cp configs/quickstart.py ~/a/b.py
ssljax-train --config=$HOME/a/b.py --config.seed=1 --workdir=/tmp/x
```
"""


def _fake_flags(module):
  return {"workdir", "config", "step", "evals"}


def test_the_command_check_finds_each_fault():
  problems = check_commands(BAD, scripts={"ssljax-train", "ssljax-eval"},
                            flags=_fake_flags)
  expected = ["configs/no_such.py: no such file",
              "quickstart.py:no_such_dataset: get_config raised ValueError",
              "--config.no_such_field: no such config field",
              "ssljax-train --no_such_flag: no such flag",
              "ssljax-frobnicate: not a console script",
              "python -m ssljax.experiments.no_such: no such module",
              "benchmarks/no_such.py: no such file",
              "notebooks/no_such.ipynb: no such file"]
  for e in expected:
    assert any(e in p for p in problems), (e, problems)
  assert len(problems) == len(expected), problems  # the fork is fine


def test_the_link_check_finds_each_fault():
  problems = check_links(BAD)
  assert problems == [
      "docs/no_such_page.md: no such file",
      "docs/getting-started.md#no-such-heading: docs/getting-started.md has "
      "no heading #no-such-heading"], problems


@pytest.mark.parametrize("line,words", [
    ("A=1 B=2 ssljax-eval --workdir=w  # c", [["ssljax-eval", "--workdir=w"]]),
    ("mkdir -p d && cp a b; echo x | wc",
     [["mkdir", "-p", "d"], ["cp", "a", "b"], ["echo", "x"], ["wc"]]),
])
def test_commands_are_split_like_bash(line, words):
  assert commands(line) == words
