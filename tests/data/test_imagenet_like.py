import io

import numpy as np
from PIL import Image
import pytest
import tensorflow_datasets as tfds

import ssljax.data
from ssljax.data import imagenet_like
from ssljax.data import pipeline
from ssljax.data import sources

NAME = "imagenet_like/tiny"


@pytest.fixture(scope="module")
def jpeg_source(data_dir):
  return ssljax.data.load_source(NAME, "train", data_dir)


def _pil(data):
  return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_sizes_and_files_are_imagenet_like(jpeg_source, data_dir):
  raw = tfds.data_source(NAME, split="train", data_dir=data_dir,
                         decoders={"image": tfds.decode.SkipDecoding()})
  for i in range(len(raw)):
    data, label = raw[i]["image"], raw[i]["label"]
    assert data[:2] == b"\xff\xd8" and 0 <= label < 1000
    h, w = Image.open(io.BytesIO(data)).size[::-1]
    assert 250 <= max(h, w) <= 500
    aspect = max(h, w) / min(h, w)
    assert min(abs(aspect - a) for a in imagenet_like.ASPECTS) < 0.02
    if max(h, w) == 500 and min(h, w) >= 333:
      assert 60_000 < len(data) < 250_000  # ImageNet's ≈ 110 KB at q 90
  # Example i depends only on (seed, split, i).
  again, label = imagenet_like.example(0, "train", 3)
  assert label == imagenet_like.example(0, "train", 3)[1]
  np.testing.assert_array_equal(_pil(again),
                                _pil(imagenet_like.example(0, "train", 3)[0]))


def test_load_source_decodes_jpeg_as_tfds_does(jpeg_source, data_dir):
  assert isinstance(jpeg_source, sources.JpegDecoded)
  tfds_decoded = tfds.data_source(NAME, split="train", data_dir=data_dir)
  for i in range(len(jpeg_source)):
    ours, theirs = jpeg_source[i], tfds_decoded[i]
    assert ours["label"] == theirs["label"]
    np.testing.assert_array_equal(ours["image"], theirs["image"])


def test_decode_jpeg_grey_and_cmyk():
  rgb = np.asarray(Image.fromarray(
      np.random.default_rng(0).integers(0, 255, (40, 56, 3), np.uint8)))
  buf = io.BytesIO()
  Image.fromarray(rgb).convert("L").save(buf, format="JPEG")
  assert sources.decode_jpeg(buf.getvalue(), 1).shape == (40, 56, 1)
  assert sources.decode_jpeg(buf.getvalue(), 3).shape == (40, 56, 3)
  buf = io.BytesIO()
  Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG")
  got = sources.decode_jpeg(buf.getvalue())
  assert got.shape == (40, 56, 3)
  assert np.abs(got.astype(int) - _pil(buf.getvalue())).max() <= 1


def test_pipeline_crops_equal_those_of_decoded_images(jpeg_source):
  crops = pipeline.Crops(global_size=64, global_scale=(0.08, 1.0),
                         num_local=2, local_size=32)
  eager = [jpeg_source[i] for i in range(len(jpeg_source))]
  a = next(pipeline.train_iterator(jpeg_source, global_batch=8, crops=crops,
                                   process_index=0, process_count=1))
  b = next(pipeline.train_iterator(eager, global_batch=8, crops=crops,
                                   process_index=0, process_count=1))
  assert a["global"].shape == (8, 2, 64, 64, 3)
  for k in ("global", "local", "label", "index"):
    np.testing.assert_array_equal(a[k], b[k])


def test_mocked_imagenet_keeps_tfds_decoding():
  with tfds.testing.mock_data(num_examples=4,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    src = ssljax.data.load_source("imagenet2012", "train")
    assert src[0]["image"].ndim == 3 and len(src) == 4
