"""The package's layers, read from its imports (ast: nothing is executed).

Three layers, each importing only those below it: the library (every
module outside the two others), the experiments (ssljax/experiments/:
whole CPU experiments, each a `python -m` program), and the command line
(ssljax/cli/: the console scripts). docs/layout.md draws them.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "ssljax"
CLI, EXPERIMENTS = "ssljax.cli", "ssljax.experiments"
MAX_LINES = 450
# Imports inside a function, each for a reason other than a cycle.
DEFERRED = {
    # The console scripts install the SIGTERM handler before importing
    # JAX (a preemption notice while importing is then a clean stop).
    ("ssljax.cli.entry", "ssljax.cli.train"),
    ("ssljax.cli.entry", "ssljax.cli.eval"),
    ("ssljax.cli.entry", "ssljax.cli.export"),
    ("ssljax.cli.entry", "ssljax.cli.import_"),
}


def _modules(root=ROOT):
  """{dotted name: path} of every module of the package."""
  out = {}
  for path in root.rglob("*.py"):
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
      parts.pop()
    out[".".join(parts)] = path
  return out


def _ancestors(name):
  parts = name.split(".")
  return {".".join(parts[:i]) for i in range(1, len(parts))}


def _targets(node, name, is_package, modules):
  """The package modules an import statement in module `name` runs."""
  if isinstance(node, ast.Import):
    wanted = [a.name for a in node.names]
  else:
    base = node.module or ""
    if node.level:
      parts = name.split(".")[:len(name.split(".")) - node.level
                                + (1 if is_package else 0)]
      base = ".".join(parts + ([node.module] if node.module else []))
    # `from pkg import sub` runs pkg.sub; `from pkg import name`, pkg.
    wanted = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
              for a in node.names]
  out = set()
  for w in wanted:
    if w in modules:
      # Importing a.b.c runs a/__init__ and a/b/__init__ first; a module's
      # own packages are already running (not an edge).
      out |= ({w} | _ancestors(w)) - _ancestors(name)
  return out - {name}


def import_graph(modules=None):
  """({module: {modules it imports}}, {(module, target) imported inside a
  function})."""
  modules = modules or _modules()
  graph, deferred = {}, set()
  for name, path in modules.items():
    tree = ast.parse(path.read_text(), str(path))
    graph[name] = set()
    inner = {id(n) for f in ast.walk(tree)
             if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    for node in ast.walk(tree):
      if isinstance(node, (ast.Import, ast.ImportFrom)):
        targets = _targets(node, name, path.name == "__init__.py", modules)
        graph[name] |= targets
        if id(node) in inner:
          deferred |= {(name, t) for t in targets}
  return graph, deferred


def find_cycle(graph):
  """One import cycle [a, b, ..., a], or None."""
  state, stack = {}, []

  def visit(m):
    state[m] = "open"
    stack.append(m)
    for t in sorted(graph.get(m, ())):
      if state.get(t) == "open":
        return stack[stack.index(t):] + [t]
      if t not in state:
        cycle = visit(t)
        if cycle:
          return cycle
    stack.pop()
    state[m] = "done"
    return None

  for m in sorted(graph):
    if m not in state:
      cycle = visit(m)
      if cycle:
        return cycle
  return None


def layer(name):
  for prefix, level in ((CLI, 2), (EXPERIMENTS, 1)):
    if name == prefix or name.startswith(prefix + "."):
      return level
  return 0


def upward_imports(graph):
  """[(module, target)] where a module imports a layer above its own."""
  return sorted((m, t) for m, ts in graph.items() for t in ts
                if layer(t) > layer(m))


def test_no_import_cycle():
  graph, _ = import_graph()
  assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_library_never_imports_the_programs_above_it():
  graph, _ = import_graph()
  assert upward_imports(graph) == []


def test_imports_inside_functions_are_only_the_listed_ones():
  _, deferred = import_graph()
  assert deferred == DEFERRED


def unnamed_in_layout(text, root=ROOT):
  """Modules that docs/layout.md does not name: by their path, or by their
  file name in a table row that names their folder."""
  rows = [line for line in text.splitlines() if line.startswith("|")]
  missing = []
  for path in sorted(root.rglob("*.py")):
    rel = path.relative_to(root.parent).as_posix()
    folder = rel.rsplit("/", 1)[0] + "/"
    if f"`{rel}`" not in text and not any(
        f"`{folder}" in r and f"`{path.name}`" in r for r in rows):
      missing.append(rel)
  return missing


def test_layout_names_every_module():
  text = (ROOT.parent / "docs" / "layout.md").read_text()
  assert unnamed_in_layout(text) == []
  assert unnamed_in_layout(text.replace("`ssljax/train_step.py`", "")) == [
      "ssljax/train_step.py"]
  assert unnamed_in_layout(text.replace(", `ijepa.py`", "")) == [
      "ssljax/methods/ijepa.py"]


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_files_fit_one_reading(path):
  lines = path.read_text().splitlines()
  assert len(lines) <= MAX_LINES
  doc = ast.get_docstring(ast.parse("\n".join(lines)))
  assert doc and doc.splitlines()[0].strip(), "a first line saying what for"


# The checks themselves, on graphs made to fail.
def test_find_cycle_finds_a_cycle_through_a_package_init():
  graph = {"p": {"p.a"}, "p.a": {"q"}, "q": {"p.b", "p"}, "p.b": set()}
  assert find_cycle(graph) == ["p", "p.a", "q", "p"]
  graph["q"] = {"p.b"}
  assert find_cycle(graph) is None


def test_import_graph_reads_from_imports_relative_imports_and_packages(
    tmp_path):
  pkg = tmp_path / "ssljax"
  (pkg / "cli").mkdir(parents=True)
  (pkg / "m").mkdir()
  (pkg / "__init__.py").write_text('"""x"""\n')
  (pkg / "cli" / "__init__.py").write_text('"""x"""\n')
  (pkg / "cli" / "c.py").write_text('"""x"""\nfrom ssljax.m import a\n')
  (pkg / "m" / "__init__.py").write_text('"""x"""\nfrom . import a\n')
  (pkg / "m" / "a.py").write_text(
      '"""x"""\nfrom ssljax.m import b\ndef f():\n  from ssljax.cli import c\n')
  (pkg / "m" / "b.py").write_text('"""x"""\nimport ssljax\n')
  graph, deferred = import_graph(_modules(pkg))
  assert graph["ssljax.m"] == {"ssljax.m.a"}
  assert graph["ssljax.m.a"] == {"ssljax.m.b", "ssljax.cli", "ssljax.cli.c"}
  assert graph["ssljax.cli.c"] == {"ssljax.m", "ssljax.m.a"}
  assert graph["ssljax.m.b"] == set()  # its own package: not an edge
  assert deferred == {("ssljax.m.a", "ssljax.cli"),
                      ("ssljax.m.a", "ssljax.cli.c")}
  assert upward_imports(graph) == [("ssljax.m.a", "ssljax.cli"),
                                   ("ssljax.m.a", "ssljax.cli.c")]
  assert find_cycle(graph) == ["ssljax.cli.c", "ssljax.m", "ssljax.m.a",
                               "ssljax.cli.c"]
