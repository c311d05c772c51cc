"""`imagenet_like`: generated JPEGs with ImageNet's sizes, for input-pipeline work.

What an ImageNet input pipeline spends its host time on is decoding ~110 KB
JPEGs of about 500 × 375 px and cropping them; the datasets ssljax ships are
small PNGs, which measure none of that. This builder writes JPEGs that cost
what ImageNet's cost, so `benchmarks/input_pipeline.py` can measure the
decode-and-crop path without the real data (which cannot be shipped):

- Sizes: the longer side is 500 px for 85% of images (as for most of
  ImageNet's train set), otherwise uniform in [250, 500); aspect ratios
  4:3 (55%), 3:2 (20%), 1:1 (10%), 16:9 (10%), 5:4 (5%); 20% are portrait.
- Content: per-channel 1/f ("pink") noise, the power spectrum of natural
  images, which makes baseline JPEG at quality 90 about as large as ImageNet's
  files (≈ 120 KB at 500 × 375 here; ImageNet's train JPEGs average ≈ 110 KB).
- Labels: 1,000 classes, each with its own mean colour (a weak class signal,
  so the labels are not pure noise; the dataset is for throughput, not for
  representation learning).

Configs: `small` (default; 1,000 train / 200 validation, ≈ 140 MB, about a
minute to generate), `10k` (10,000 / 1,000), `tiny` (16 / 8, for tests).
Built offline on first use in array_record, like the other shipped datasets.
Example `i` of a split depends only on (seed, split, i).
"""

import dataclasses
import io

import numpy as np
from PIL import Image
import tensorflow_datasets as tfds

NUM_CLASSES = 1000
SPLIT_IDS = {"train": 0, "validation": 1}
ASPECTS = (4 / 3, 3 / 2, 1.0, 16 / 9, 5 / 4)
ASPECT_P = (0.55, 0.20, 0.10, 0.10, 0.05)


def image_size(rng):
  """(height, width) drawn from the ImageNet-like size distribution."""
  long = 500 if rng.random() < 0.85 else int(rng.integers(250, 500))
  short = int(round(long / ASPECTS[rng.choice(len(ASPECTS), p=ASPECT_P)]))
  return (long, short) if rng.random() < 0.2 else (short, long)


def pink_noise(rng, height, width, mean_rgb):
  """uint8 (height, width, 3): 1/f noise per channel around `mean_rgb`."""
  fy = np.fft.fftfreq(height).astype(np.float32)[:, None]
  fx = np.fft.rfftfreq(width).astype(np.float32)[None]
  f = np.sqrt(fy**2 + fx**2)
  f[0, 0] = 1.0
  shape = (3,) + f.shape
  spec = (rng.standard_normal(shape, np.float32)
          + 1j * rng.standard_normal(shape, np.float32)) / f
  x = np.fft.irfft2(spec, s=(height, width), axes=(1, 2))
  x = (x - x.mean(axis=(1, 2), keepdims=True)) / x.std() * 50
  x = np.moveaxis(x, 0, -1) + np.asarray(mean_rgb, np.float32)
  return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def class_colour(label):
  """The mean RGB of class `label`: fixed, spread over [70, 185]^3."""
  rng = np.random.default_rng([label, 7])
  return rng.uniform(70, 185, size=3)


def example(seed, split, index, quality=90):
  """(JPEG bytes, label) of example `index` of `split`."""
  rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
  label = int(rng.integers(NUM_CLASSES))
  image = pink_noise(rng, *image_size(rng), class_colour(label))
  buf = io.BytesIO()
  Image.fromarray(image).save(buf, format="JPEG", quality=quality)
  return buf.getvalue(), label


@dataclasses.dataclass
class ImagenetLikeConfig(tfds.core.BuilderConfig):
  num_train: int = 1000
  num_validation: int = 200
  quality: int = 90
  seed: int = 0


class ImagenetLike(tfds.core.GeneratorBasedBuilder):
  """Generated JPEGs with ImageNet's sizes and file sizes (1,000 classes)."""

  VERSION = tfds.core.Version("1.0.0")
  BUILDER_CONFIGS = [
      ImagenetLikeConfig(name="small", description="1,000 / 200 images."),
      ImagenetLikeConfig(name="10k", num_train=10_000, num_validation=1_000,
                         description="10,000 / 1,000 images."),
      ImagenetLikeConfig(name="tiny", num_train=16, num_validation=8,
                         description="16 / 8 images, for tests."),
  ]

  def __init__(self, **kwargs):
    kwargs.setdefault("file_format", "array_record")
    super().__init__(**kwargs)

  def _info(self):
    return tfds.core.DatasetInfo(
        builder=self,
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(None, None, 3),
                                         encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
        }),
        supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # generated: nothing to download.
    cfg = self.builder_config
    return {"train": self._generate_examples("train", cfg.num_train),
            "validation": self._generate_examples("validation",
                                                  cfg.num_validation)}

  def _generate_examples(self, split, num):
    cfg = self.builder_config
    for i in range(num):
      data, label = example(cfg.seed, split, i, cfg.quality)
      yield i, {"image": data, "label": label}
