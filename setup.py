"""keras-dimsel: learned embedding dimensions (AutoDim, AMTL) for Keras recommenders."""

import pathlib

from setuptools import find_packages, setup

README = pathlib.Path(__file__).with_name("README.md")

EXTRAS = {
    "beam": ["apache-beam[gcp]>=2.59,<2.75", "tfx-bsl>=1.16,<1.17", "dill"],
    # kfp-pipeline-spec: what KubeflowV2DagRunner needs to compile a pipeline
    # JSON (tfx[kfp] would pull kfp 2, which conflicts with the Beam GCP pins).
    "tfx": ["tfx>=1.16,<1.17", "dill", "kfp-pipeline-spec>=0.2.2,<0.3"],
    "tune": ["keras-tuner>=1.4.7,<1.5"],
    # pymdown-extensions 12 changed Highlight(md, ...), which mkdocstrings 1.0 does not pass.
    "docs": [
        "mkdocs>=1.6",
        "mkdocs-material>=9",
        "mkdocstrings[python]>=0.26",
        "pymdown-extensions>=10,<12",
    ],
    # scipy: the benchmark study's rank statistics (benchmarks/study/records.py) and their tests.
    "test": ["pytest>=8", "pytest-xdist>=3", "hypothesis>=6", "ruff>=0.6", "scipy>=1.10"],
}
EXTRAS["all"] = sorted({req for reqs in EXTRAS.values() for req in reqs})

setup(
    name="keras-dimsel",
    version="0.1.0",
    description="Learned embedding dimensions (AutoDim, AMTL) for Keras recommender models",
    long_description=README.read_text(encoding="utf-8") if README.exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9,<3.11",
    packages=find_packages(
        include=["keras_dimsel", "keras_dimsel.*", "tfx_pipeline", "tfx_pipeline.*"]
    ),
    install_requires=[
        "tensorflow>=2.16,<2.17",
        "tf-keras>=2.16,<2.17",
        "tensorflow-recommenders>=0.7.7",
        "numpy>=1.26,<2",
        "pandas>=1.5",
        "pyarrow>=10",
        "matplotlib>=3.7",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["dimsel=keras_dimsel.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
