"""Shared test helpers: a tiny, fast config derived from the quickstart."""
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
def tiny_flags(data_dir, num_steps=3):
  return [f"--config={os.path.join(ROOT, 'configs', 'quickstart.py')}",
          "--config.model.width=4", "--config.projector=32-32",
          "--config.data.dataset=hierarchical_shapes/32_small",
          f"--config.data.data_dir={data_dir}", "--config.data.image_size=16",
          "--config.data.num_threads=2", "--config.batch_size=32",
          "--config.eval_batch_size=200", f"--config.num_steps={num_steps}",
          "--config.log_every=1", "--config.progress=False",
          "--config.summary_eval=False"]
