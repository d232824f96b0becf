"""Real-data sources of the demo: Debian-packaged 3D images with labels, converted into nnU-Net raw datasets.

``scripts/install_demo_data.sh`` installs the packages; ``write_demo_sources`` writes what it finds;
``missing_packages`` / ``install_hint`` tell what is missing and how to get it. Command line:
``python -m nninteractive_train.demo.sources [RAW_ROOT] [--first-id N] [--check]``.
"""

from nninteractive_train.demo.locate import PACKAGES, SOURCES, find_files, install_hint, missing_packages

_FROM_SOURCES = ("DEFAULT_FIRST_ID", "convert_colin27", "convert_cranium", "convert_inia19", "convert_kmeans",
                 "read_inv3", "write_demo_sources")

__all__ = ["PACKAGES", "SOURCES", "SourceError", "find_files", "install_hint", "missing_packages", *_FROM_SOURCES]


def __getattr__(name: str):
    # Lazy, so `python -m nninteractive_train.demo.sources` does not import the module twice (runpy warning).
    if name in _FROM_SOURCES:
        from nninteractive_train.demo import sources

        return getattr(sources, name)
    if name == "SourceError":
        from nninteractive_train.demo.volume import SourceError

        return SourceError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
