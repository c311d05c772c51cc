"""ssljax-import / ssljax-export against the real PyTorch libraries.

  python benchmarks/export_roundtrip.py --out=/tmp/export

Needs torch, torchvision and timm (`pip install -e ".[bench]"`). A
torchvision resnet18() and a timm vit_small_patch16_224(img_size=32,
patch_size=4), each at its PyTorch random init in eval mode, are saved as
safetensors, imported into a workdir of configs/compare_cpu.py's data
(ssljax.saved_runs.import_weights), and evaluated by ssljax (`saved_runs.load`, the
features ssljax-eval computes) and by PyTorch on the same 16 random 32 px
images; then the workdir is exported again (ssljax.saved_runs.export). Prints, per
model: the number of weights, the largest feature difference and the
largest feature, and whether every exported weight equals the imported file
bit for bit (the classifier excepted: the export writes it as zeros). Not
a timing.
"""

import json
import os

from absl import app
from absl import flags
import numpy as np

from ssljax import saved_runs
from ssljax.experiments import load_config

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "/tmp/ssljax_export_roundtrip", "Output folder.")


def _models():
  import timm  # pylint: disable=g-import-not-at-top
  import torchvision  # pylint: disable=g-import-not-at-top
  return (("torchvision_resnet18", "torchvision", torchvision.models.resnet18(),
           dict(name="resnet18", dtype="float32")),
          ("timm_vit_small", "timm", timm.create_model(
              "vit_small_patch16_224", img_size=32, patch_size=4),
           dict(name="vit_small", patch_size=4, image_size=32,
                dtype="float32")))


def roundtrip(out):
  import safetensors.numpy  # pylint: disable=g-import-not-at-top
  import safetensors.torch  # pylint: disable=g-import-not-at-top
  import torch  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  images = (np.random.RandomState(0).rand(16, 32, 32, 3) * 255).astype(
      np.uint8)
  results = {}
  for name, fmt, model, model_cfg in _models():
    model.eval()
    path = os.path.join(out, f"{name}.safetensors")
    os.makedirs(out, exist_ok=True)
    safetensors.torch.save_file(
        {k: v.contiguous() for k, v in model.state_dict().items()}, path)
    cfg = load_config("compare_cpu", "vicreg,hierarchical_shapes")
    cfg.model = model_cfg
    wd = os.path.join(out, f"{name}_workdir")
    if not os.path.exists(os.path.join(wd, "checkpoints")):
      saved_runs.import_weights(path, cfg, wd)
    _, variables, evaluator, _ = saved_runs.load(wd)
    ours = np.asarray(evaluator.represent(variables, images)["rep"])
    x = (images / 255.0 - np.array(cfg.data.mean)) / np.array(cfg.data.std)
    if fmt == "torchvision":
      model.fc = torch.nn.Identity()
    else:
      model.reset_classifier(0)
    with torch.no_grad():
      theirs = model(torch.tensor(np.transpose(x, (0, 3, 1, 2)),
                                  dtype=torch.float32)).numpy()
    back = os.path.join(out, f"{name}_exported.safetensors")
    saved_runs.export(wd, fmt, back)
    a, b = safetensors.numpy.load_file(path), safetensors.numpy.load_file(back)
    exact = a.keys() == b.keys() and all(
        np.array_equal(a[k], b[k]) for k in a
        if not k.startswith(("fc.", "head.")))
    results[name] = {"weights": len(a),
                     "max_abs_feature_diff": float(np.abs(ours - theirs).max()),
                     "max_abs_feature": float(np.abs(theirs).max()),
                     "export_equals_import": bool(exact)}
  return results


def main(argv):
  del argv
  print(json.dumps(roundtrip(FLAGS.out), indent=1))


if __name__ == "__main__":
  app.run(main)
