"""Host input pipeline on ImageNet-sized JPEGs: ssljax vs torchvision + PIL.

  python benchmarks/input_pipeline.py [--dataset=imagenet_like/small]
      [--seconds=20] [--no_torch] [--data_dir=DIR]

Data: `imagenet_like` (generated JPEGs with ImageNet's sizes and file sizes,
≈ 500 × 375 px, quality 90; built on first use), or any prepared TFDS JPEG
dataset (`--dataset=imagenet2012 --split=validation`).

Rows, in one run:
  decode        ms per image: PIL (TFDS's NumPy decoding without OpenCV, and
                what torchvision's ImageFolder uses) vs `ssljax.data.
                sources.decode_jpeg` (libjpeg-turbo through simplejpeg),
                and libjpeg-turbo's reduced-size decoding at ≥ 3/4 and
                ≥ 1/2 of the original size, over the first
                --decode_images images.
  2x224         two random-resized crops at 224 px, scale 0.08-1, flip
                (BYOL / SimCLR / VICReg).
  2x224+6x96    MVEB / DINO multi-crop: 2 × 224 (scale 0.4-1) and 6 × 96
                (scale 0.05-0.4).
Each recipe runs (a) on one core: ssljax's iterator with one reader thread
in this process, torch's DataLoader with num_workers=0 and
torch.set_num_threads(1); and (b) with one worker process per core in both.
The torch side is the standard recipe: a Dataset reading the same
array_record records, `PIL.Image.open(...).convert("RGB")`, torchvision
`RandomResizedCrop` (bilinear, the same scales and ratios) +
`RandomHorizontalFlip` + `PILToTensor` per view, uint8 batches like
ssljax's. Both decode an image once for all its views. The first --warmup
batches are excluded; examples/s over --seconds. ratio = ssljax / torch
(> 1: ssljax faster). "cores / H100" is the anchor rate of the issue
tracker's scale notes (3,500 two-view or 1,900 multi-crop examples/s per
H100 at MLPerf-like efficiency) over the one-core rate.
"""

import io
import os
import time

from absl import app
from absl import flags
import numpy as np
from PIL import Image
import simplejpeg
import tensorflow_datasets as tfds

import ssljax.data
from ssljax.data import pipeline
from ssljax.data import sources
import timing  # benchmarks/timing.py

flags.DEFINE_string("dataset", "imagenet_like/small", "TFDS JPEG dataset.")
flags.DEFINE_string("split", "train", "Split.")
flags.DEFINE_string("data_dir", None, "TFDS data_dir.")
flags.DEFINE_float("seconds", 20.0, "Measured seconds per cell.")
flags.DEFINE_integer("warmup", 2, "Batches excluded from timing.")
flags.DEFINE_integer("decode_images", 200, "Images of the decode row.")
flags.DEFINE_bool("torch", True, "Also run torchvision + PIL (pip install "
                  "torch torchvision, or the `bench` extra).")
flags.DEFINE_list("recipes", ["2x224", "2x224+6x96"], "Recipes to run.")
FLAGS = flags.FLAGS

RECIPES = {
    "2x224": (64, pipeline.Crops(global_size=224, global_scale=(0.08, 1.0)),
              3500),
    "2x224+6x96": (32, pipeline.Crops(
        global_size=224, global_scale=(0.4, 1.0), num_local=6,
        local_size=96, local_scale=(0.05, 0.4)), 1900),
}


def rate(it, batch):
  return timing.iterator_rate(it, batch, FLAGS.seconds, FLAGS.warmup)


def decode_row(raw):
  images = [raw[i]["image"] for i in range(min(FLAGS.decode_images,
                                               len(raw)))]
  sizes = [simplejpeg.decode_jpeg_header(b)[:2] for b in images]

  def scaled(s):
    # libjpeg-turbo's reduced-size decoding: the smallest DCT scale n/8
    # that keeps both sides >= s × the original.
    return lambda b, hw: simplejpeg.decode_jpeg(
        b, min_height=int(hw[0] * s), min_width=int(hw[1] * s))
  out = {}
  for name, fn in [
      ("PIL", lambda b, _: np.asarray(
          Image.open(io.BytesIO(b)).convert("RGB"))),
      ("ssljax", lambda b, _: sources.decode_jpeg(b)),
      ("scale 3/4", scaled(0.75)), ("scale 1/2", scaled(0.5))]:
    fn(images[0], sizes[0])
    t0 = time.perf_counter()
    for b, hw in zip(images, sizes):
      fn(b, hw)
    out[name] = (time.perf_counter() - t0) / len(images) * 1e3
  kb = np.mean([len(b) for b in images]) / 1024
  print(f"decode, ms per image ({len(images)} JPEGs, mean {kb:.0f} KB): " +
        ", ".join(f"{k} {v:.2f}" for k, v in out.items()) +
        f"; PIL / ssljax {out['PIL'] / out['ssljax']:.2f}", flush=True)


def torch_loader(raw, batch, crops, workers):
  """The torchvision + PIL DataLoader doing `crops` (see module doc)."""
  import torch  # pylint: disable=g-import-not-at-top
  from torchvision import transforms as T  # pylint: disable=g-import-not-at-top

  def views(size, scale, num):
    t = T.Compose([T.RandomResizedCrop(size, scale=scale, ratio=crops.ratio,
                                       interpolation=T.InterpolationMode
                                       .BILINEAR),
                   T.RandomHorizontalFlip(), T.PILToTensor()])
    return lambda img: torch.stack([t(img) for _ in range(num)])

  glob = views(crops.global_size, crops.global_scale, crops.num_global)
  loc = (views(crops.local_size, crops.local_scale, crops.num_local)
         if crops.num_local else None)

  class Data(torch.utils.data.Dataset):

    def __len__(self):
      return len(raw)

    def __getitem__(self, i):
      ex = raw[i]
      img = Image.open(io.BytesIO(ex["image"])).convert("RGB")
      out = {"global": glob(img), "label": int(ex["label"])}
      if loc:
        out["local"] = loc(img)
      return out

  data = Data()
  # One endless stream of epochs (fresh permutations), as ssljax's iterator:
  # no worker restarts or pipeline drains at epoch boundaries.
  sampler = torch.utils.data.RandomSampler(
      data, num_samples=10**9, generator=torch.Generator().manual_seed(0))
  return iter(torch.utils.data.DataLoader(
      data, batch_size=batch, sampler=sampler, drop_last=True,
      num_workers=workers))


def main(_):
  cores = os.cpu_count()
  src = ssljax.data.load_source(FLAGS.dataset, FLAGS.split, FLAGS.data_dir)
  raw = tfds.data_source(FLAGS.dataset, split=FLAGS.split,
                         data_dir=FLAGS.data_dir, download=False,
                         decoders={"image": tfds.decode.SkipDecoding()})
  print(f"{FLAGS.dataset} {FLAGS.split}: {len(src)} examples, {cores} cores")
  decode_row(raw)
  if FLAGS.torch:
    import torch  # pylint: disable=g-import-not-at-top
  head = f"{'recipe':<12} {'setting':<20} {'ssljax ex/s':>12}"
  if FLAGS.torch:
    head += f" {'torch ex/s':>11} {'ratio':>6}"
  print(head + f" {'cores / H100':>13}")
  for name in FLAGS.recipes:
    batch, crops, anchor = RECIPES[name]
    for setting, workers in [("one core", 0), (f"{cores} workers", cores)]:
      it = pipeline.train_iterator(src, global_batch=batch, crops=crops,
                                   num_threads=1, worker_count=workers,
                                   process_index=0, process_count=1)
      ours = rate(it, batch)
      del it
      line = f"{name:<12} {setting:<20} {ours:>12.0f}"
      if FLAGS.torch:
        torch.set_num_threads(1)
        theirs = rate(torch_loader(raw, batch, crops, workers), batch)
        line += f" {theirs:>11.0f} {ours / theirs:>6.2f}"
      cores_needed = anchor / ours * (1 if workers == 0 else cores)
      print(line + f" {cores_needed:>13.1f}", flush=True)


if __name__ == "__main__":
  app.run(main)
