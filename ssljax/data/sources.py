"""Random-access data sources: any TFDS dataset by name, read without TensorFlow.

`load_source` wraps `tfds.data_source` (array_record files, random access)
with errors that say what to do. Datasets that ssljax generates or ships
(`SHIPPED`) build themselves offline on first use; every other TFDS dataset must
be prepared beforehand in array_record format, e.g. on a machine with internet:

    pip install tensorflow-datasets tensorflow   # tensorflow only for building
    tfds build cifar100 --data_dir=DATA_DIR --file_format=array_record
"""

import difflib
import io

from etils import epath
import numpy as np
from PIL import Image
import simplejpeg
import tensorflow_datasets as tfds

# Builders defined in ssljax; importing ssljax.data registers them with TFDS.
SHIPPED = ("hierarchical_shapes", "hierarchical_shapes_v2",
           "hierarchical_shapes_v1", "imagenet_like", "mnist5k",
           "spiral2d")


class DatasetError(ValueError):
  """A dataset could not be opened; the message says what to do."""


def _check_name(name):
  base = name.split("/")[0].split(":")[0]
  known = tfds.list_builders(with_community_datasets=False)
  if base in known:
    return
  close = difflib.get_close_matches(base, known, n=3)
  hint = f" Did you mean: {', '.join(close)}?" if close else ""
  raise DatasetError(
      f"Unknown dataset {base!r}.{hint} Datasets that ship with ssljax (no "
      f"download): {', '.join(SHIPPED)}. Any TFDS image dataset also works "
      "(e.g. cifar10, cifar100, stl10, imagenet2012); full list: "
      "tfds.list_builders().")


def _prepare_hint(name, data_dir):
  where = data_dir or "~/tensorflow_datasets"
  return (f"Prepare it in array_record format where there is internet, then "
          f"point data_dir at that folder (local or gs://): `tfds build "
          f"{name} --data_dir={where} --file_format=array_record`. "
          "Manual-download datasets such as imagenet2012 also need "
          "--manual_dir; see the TFDS catalog page of the dataset.")


def load_source(name, split, data_dir=None, download=None):
  """Opens `split` of TFDS dataset `name` as a random-access source.

  Args:
    name: TFDS name, optionally with config and version (`"cifar100"`,
      `"hierarchical_shapes/64"`).
    split: TFDS split string, slicing allowed (`"train[:90%]"`).
    data_dir: folder holding prepared datasets (local or gs://); None for the
      TFDS default (~/tensorflow_datasets or $TFDS_DATA_DIR).
    download: build the dataset if missing. Default: True for datasets that
      ssljax ships or generates (offline), False for all others.

  Returns:
    A sequence: `len(src)` examples, `src[i]` a dict of numpy values.
  """
  _check_name(name)
  base = name.split("/")[0].split(":")[0]
  if download is None:
    download = base in SHIPPED
  if data_dir and not epath.Path(data_dir).is_dir():
    # Never created here, not even for the shipped datasets: a typo in
    # data_dir must not silently build a second copy somewhere else.
    what = (f"mkdir -p {data_dir} and {name!r} builds itself there on first "
            "use, or leave data_dir unset for ~/tensorflow_datasets"
            if base in SHIPPED else _prepare_hint(name, data_dir))
    raise DatasetError(f"data_dir {data_dir!r} does not exist. {what}.")
  try:
    src = tfds.data_source(name, split=split, data_dir=data_dir,
                           download=download)
  except (NotImplementedError, FileNotFoundError, AssertionError) as e:
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
      raise _not_prepared(name, data_dir) from e
    if "file format" in str(e).lower():
      raise DatasetError(
          f"Dataset {name!r} in {builder.data_dir!r} is in a sequential file "
          "format; ssljax needs random access. "
          f"{_prepare_hint(name, data_dir)}") from e
    raise
  except KeyError as e:  # tfds: "`splits` is empty" for an unprepared one
    raise _not_prepared(name, data_dir) from e
  except ValueError as e:
    if "0 length" in str(e):  # tfds: "Paths sequence can not be of 0 length"
      raise _empty_split(name, split, data_dir) from e
    if "split" in str(e).lower():
      splits = list(tfds.builder(name, data_dir=data_dir).info.splits)
      raise DatasetError(f"Unknown split {split!r} of {name!r}; valid splits: "
                         f"{', '.join(splits)} (slicing such as "
                         "'train[:90%]' is allowed).") from e
    raise
  if not len(src):  # pylint: disable=g-explicit-length-test
    raise _empty_split(name, split, data_dir)
  jpeg = _jpeg_images(src)
  if jpeg:
    undecoded = tfds.data_source(
        name, split=split, data_dir=data_dir, download=False,
        decoders={k: tfds.decode.SkipDecoding() for k in jpeg})
    try:
      first = undecoded[0]
    except ImportError:
      # tfds.testing.mock_data makes random arrays and needs TensorFlow to
      # encode them: keep TFDS's decoding there.
      return src
    if all(isinstance(first[k], bytes) for k in jpeg):
      src = JpegDecoded(undecoded, jpeg)
  return src


def _jpeg_images(src):
  """{key: channels} of the source's top-level JPEG image features."""
  info = getattr(src, "dataset_info", None)
  features = getattr(info, "features", None) or {}
  return {k: f.shape[-1] or 3 for k, f in features.items()
          if isinstance(f, tfds.features.Image)
          and getattr(f, "encoding_format", None) == "jpeg"}


def decode_jpeg(data, channels=3):
  """uint8 H×W×channels of JPEG bytes, decoded by libjpeg-turbo (simplejpeg).

  Pixel for pixel what TFDS's own NumPy decoding (PIL, which links the same
  libjpeg-turbo with the same accurate DCT and smooth upsampling) returns, in
  about 2/3 of its time (`benchmarks/input_pipeline.py`). Files libjpeg-turbo
  cannot turn into RGB (CMYK JPEGs, a PNG under a .jpg name: ImageNet has
  both) go through PIL and are converted.
  """
  space = "GRAY" if channels == 1 else "RGB"
  try:
    image = simplejpeg.decode_jpeg(data, colorspace=space)
  except ValueError:
    with Image.open(io.BytesIO(data)) as pil:
      image = np.asarray(pil.convert("L" if channels == 1 else "RGB"))
  return image.reshape(image.shape[:2] + (channels,))


class JpegDecoded:
  """A TFDS source read with its JPEG features undecoded, decoding them with
  `decode_jpeg` on access. `load_source` returns this for JPEG datasets
  (imagenet2012, `imagenet_like`); the examples are those TFDS would give."""

  def __init__(self, source, jpeg_channels):
    self.source, self.jpeg = source, dict(jpeg_channels)
    self.dataset_info = getattr(source, "dataset_info", None)

  def __len__(self):
    return len(self.source)

  def __getitem__(self, index):
    example = dict(self.source[index])
    for key, channels in self.jpeg.items():
      example[key] = decode_jpeg(example[key], channels)
    return example


def _not_prepared(name, data_dir):
  """DatasetError for a dataset with no prepared copy in data_dir, saying
  whether its folder is missing or exists without dataset_info.json."""
  folder = epath.Path(tfds.builder(name, data_dir=data_dir).data_dir)
  if not folder.exists():
    state = f"no folder {str(folder)!r}: it was never built there"
  elif not (folder / "dataset_info.json").exists():
    state = (f"the folder {str(folder)!r} exists but holds no "
             "dataset_info.json: a build that did not finish; delete the "
             "folder and build again")
  else:
    state = f"{str(folder)!r} holds no complete split files"
  return DatasetError(f"Dataset {name!r} is not prepared ({state}). "
                      f"{_prepare_hint(name, data_dir)}")


def _empty_split(name, split, data_dir):
  splits = tfds.builder(name, data_dir=data_dir).info.splits
  sizes = ", ".join(f"{k} ({v.num_examples})" for k, v in splits.items())
  return DatasetError(
      f"Split {split!r} of dataset {name!r} holds 0 examples; use a split "
      f"with examples (splits: {sizes}; slicing such as 'train[:90%]' or "
      "'train[:1000]' is allowed).")


def check_keys(source, keys, *, dataset, split):
  """Raises DatasetError unless every feature key is in the examples.

  Args:
    source: what `load_source` returns (or `InMemory` of it).
    keys: the feature keys a run reads: a sequence (`["label",
      "coarse_label"]`) or a mapping config field -> key or keys
      (`{"data.label_key": "label", "eval.coarse_label_keys": (...)}`),
      whose field names the message then gives. None entries are ignored.
    dataset, split: named in the message.
  """
  if hasattr(keys, "items"):
    wanted = [(k, field) for field, v in keys.items()
              for k in ((v,) if isinstance(v, str) or v is None else v)]
  else:
    wanted = [(k, None) for k in keys]
  info = getattr(source, "dataset_info", None)
  if info is not None and getattr(info, "features", None) is not None:
    valid = set(info.features.keys())
  elif len(source):  # pylint: disable=g-explicit-length-test
    valid = set(source[0].keys())
  else:
    raise _empty_split(dataset, split, None)
  missing = [(k, f) for k, f in wanted if k is not None and k not in valid]
  if missing:
    names = ", ".join(f"{k} ({f})" if f else str(k) for k, f in missing)
    raise DatasetError(
        f"Dataset {dataset!r} split {split!r} has no key(s) {names}; its "
        f"keys: {', '.join(sorted(valid))}. Use one of them.")


def load_labels(name, split, data_dir=None, key="label"):
  """int64 [n]: the `key` label of every example of a prepared split, read
  without decoding images (tfds SkipDecoding: a pass over the records, not
  over decoded pixels), e.g. to hold classes out of pretraining."""
  _check_name(name)
  builder = tfds.builder(name, data_dir=data_dir)
  features = builder.info.features
  if key not in features:
    raise DatasetError(f"Dataset {name!r} has no label {key!r}; its fields: "
                       f"{', '.join(sorted(features.keys()))}.")
  skip = {k: tfds.decode.SkipDecoding() for k, f in features.items()
          if isinstance(f, tfds.features.Image)}
  src = tfds.data_source(name, split=split, data_dir=data_dir,
                         download=False, decoders=skip)
  return np.asarray([src[i][key] for i in range(len(src))], np.int64)


class InMemory:
  """A random-access source read once into host memory, decoded.

  For small datasets (mnist5k, spiral2d): TFDS decodes an example's PNG on
  every read (~0.1-0.3 ms), which then dominates the input pipeline of a
  small model. Keeps the wrapped source's `dataset_info` (class counts).
  """

  def __init__(self, source):
    self.examples = [source[i] for i in range(len(source))]
    self.dataset_info = getattr(source, "dataset_info", None)

  def __len__(self):
    return len(self.examples)

  def __getitem__(self, index):
    return self.examples[index]

