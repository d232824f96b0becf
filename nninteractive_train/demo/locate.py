"""Where the demo's Debian packages put their files, and what is missing.

A package counts as present when its files are found under one of the search roots: ``/`` (installed with
``apt-get install``) or ``$NNI_DEMO_DATA/<package>`` (``apt-get download`` + ``dpkg -x``, the fallback of
``scripts/install_demo_data.sh``; ``$NNI_DEMO_DATA`` defaults to ``~/.cache/nninteractive_train/debian``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PACKAGES = ("mricron-data", "invesalius-examples", "insighttoolkit5-examples")
INSTALL_SCRIPT = "scripts/install_demo_data.sh"

_MRICRON = "usr/share/mricron/templates"
_ITK = "usr/share/doc/insighttoolkit5-examples/examples/Data"


@dataclass(frozen=True)
class Source:
    """One demo dataset: which package ships it, and its files (role -> path relative to the package root)."""

    name: str
    package: str
    dataset_name: str
    files: dict[str, str]


# Fixed order: a source's dataset id is ``first_id + its index here``, whether or not the others are present.
SOURCES: tuple[Source, ...] = (
    Source("colin27", "mricron-data", "Colin27AAL", {
        "image": f"{_MRICRON}/ch2.nii.gz",
        "label": f"{_MRICRON}/aal.nii.gz",
        "names": f"{_MRICRON}/aal.nii.txt",
    }),
    Source("inia19", "mricron-data", "INIA19Macaque", {
        "image": f"{_MRICRON}/inia19-t1-brain.nii.gz",
        "label": f"{_MRICRON}/inia19-NeuroMaps.nii.gz",
    }),
    Source("cranium", "invesalius-examples", "CraniumCT", {
        "inv3": "usr/share/doc/invesalius-examples/examples/Cranium.inv3",
    }),
    Source("kmeans", "insighttoolkit5-examples", "KmeansT1", {
        "image": f"{_ITK}/KmeansTest_T1UCharRaw.nii.gz",
        "label": f"{_ITK}/KmeansTest_T1KmeansPrelimSegmentation.nii.gz",
    }),
)

# One file per package that proves it is there; scripts/install_demo_data.sh checks the same paths.
KEY_FILES = {
    "mricron-data": f"{_MRICRON}/ch2.nii.gz",
    "invesalius-examples": "usr/share/doc/invesalius-examples/examples/Cranium.inv3",
    "insighttoolkit5-examples": f"{_ITK}/KmeansTest_T1UCharRaw.nii.gz",
}


def extract_dir() -> Path:
    """The folder where ``install_demo_data.sh`` extracts packages it cannot install (``$NNI_DEMO_DATA``)."""
    return Path(os.environ.get("NNI_DEMO_DATA") or "~/.cache/nninteractive_train/debian").expanduser()


def package_roots(package: str, roots: list[str | os.PathLike] | None = None) -> list[Path]:
    """Folders that may hold ``package``'s ``usr/share/...`` tree, in search order.

    ``roots`` replaces the default (``/`` and ``extract_dir()/<package>``); each given root is searched both as
    is and with ``/<package>`` appended, so a single ``dpkg -x`` target folder works too.
    """
    if roots is None:
        return [Path("/"), extract_dir() / package]
    out: list[Path] = []
    for r in roots:
        out += [Path(r), Path(r) / package]
    return out


def find_files(source: Source, roots: list[str | os.PathLike] | None = None) -> dict[str, Path] | None:
    """The absolute paths of ``source``'s files from the first root that holds all of them, else None."""
    for root in package_roots(source.package, roots):
        paths = {role: root / rel for role, rel in source.files.items()}
        if all(p.is_file() for p in paths.values()):
            return paths
    return None


def missing_packages(roots: list[str | os.PathLike] | None = None) -> list[str]:
    """The demo packages none of whose sources can be found (in ``PACKAGES`` order)."""
    return [p for p in PACKAGES
            if not any(find_files(s, roots) for s in SOURCES if s.package == p)]


def install_hint(missing: list[str] | None = None) -> str:
    """A message telling how to get ``missing`` (default: what is missing now); empty when nothing is."""
    missing = missing_packages() if missing is None else missing
    if not missing:
        return ""
    return (f"missing Debian packages with the demo's real images: {', '.join(missing)}.\n"
            f"Install them with: {INSTALL_SCRIPT}   (as root: apt-get install {' '.join(missing)}; without root it "
            f"runs `apt-get download` + `dpkg -x` into $NNI_DEMO_DATA, default {extract_dir()})")
