"""Reading, checking and writing the cases of a collection.

Geometry follows nnU-Net's ``SimpleITKIO`` exactly (arrays in SimpleITK's (Z, Y, X) order, spacing per array axis
in mm, the SimpleITK spacing / origin / direction kept for writing), so the merged dataset reads back in nnU-Net
as the sources did. Images are never decoded into the merged dataset: they are copied (or hard-linked) after the
checks, and labels are written with the source label's geometry.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from nninteractive_train.errors import CaseError  # re-exported: a bad source case names its file


def read_header(file: str | os.PathLike) -> dict:
    """Geometry of an image file without reading its pixels, in SimpleITKIO's conventions.

    Returns ``{"shape": (Z, Y, X), "spacing": [mm per array axis], "channels": int, "sitk_stuff": {...}}``
    (a 2D file becomes shape (1, Y, X) with a large first spacing, as nnU-Net does). Raises :class:`CaseError`.
    """
    file = Path(file)
    if not file.is_file():
        raise CaseError(file, "file is missing")
    r = sitk.ImageFileReader()
    r.SetFileName(str(file))
    try:
        r.ReadImageInformation()
    except Exception as e:  # SimpleITK raises RuntimeError with long messages for unreadable files
        raise CaseError(file, f"cannot read ({type(e).__name__}: {str(e).strip().splitlines()[0]})") from None
    size, spacing = list(r.GetSize())[::-1], list(r.GetSpacing())[::-1]
    if r.GetDimension() == 2:
        size, spacing = [1, *size], [max(spacing) * 999, *spacing]
    elif r.GetDimension() == 4:
        raise CaseError(file, f"4D files are not supported (shape {tuple(size)}); store one file per channel")
    elif r.GetDimension() != 3:
        raise CaseError(file, f"unexpected number of dimensions: {r.GetDimension()}")
    return {"shape": tuple(int(x) for x in size), "spacing": [abs(float(x)) for x in spacing],
            "channels": int(r.GetNumberOfComponents()),
            "sitk_stuff": {"spacing": r.GetSpacing(), "origin": r.GetOrigin(), "direction": r.GetDirection()}}


def read_pixels(file: str | os.PathLike, shape: tuple[int, ...]) -> np.ndarray:
    """The pixel array of a single-channel file in SimpleITK's (Z, Y, X) order.

    NIfTI files are read with nibabel because ITK's NIfTI reader silently turns NaN and infinite values into 0,
    which would hide broken images; other formats are read with SimpleITK.
    """
    name = str(file)
    try:
        if name.endswith((".nii", ".nii.gz")):
            import nibabel as nib

            arr = np.asarray(nib.load(name).dataobj).T
        else:
            arr = sitk.GetArrayFromImage(sitk.ReadImage(name))
    except Exception as e:
        raise CaseError(file, f"cannot read pixels ({type(e).__name__}: {str(e).strip().splitlines()[0]})") from None
    return arr.reshape(shape)


def read_label(file: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Read a label map and check it holds finite, non-negative integers.

    Returns ``(labels, header)``: (Z, Y, X) int32 array and :func:`read_header`'s dict. Raises :class:`CaseError`
    naming ``file``.
    """
    file = Path(file)
    if not file.is_file():
        raise CaseError(file, "label file is missing")
    head = read_header(file)
    if head["channels"] != 1:
        raise CaseError(file, f"label map must have one channel, got {head['channels']}")
    seg = read_pixels(file, head["shape"])
    if not np.issubdtype(seg.dtype, np.integer):
        if not np.all(np.isfinite(seg)):
            raise CaseError(file, "label map contains NaN or infinite values")
        rounded = np.rint(seg)
        if not np.array_equal(rounded, seg):
            bad = np.unique(seg[rounded != seg])[:5]
            raise CaseError(file, f"label map has non-integer values, e.g. {bad.tolist()}")
        seg = rounded
    if seg.size and seg.min() < 0:
        raise CaseError(file, f"label map has negative values (min {seg.min():g})")
    if seg.size and seg.max() > np.iinfo(np.int32).max:
        raise CaseError(file, f"label value {seg.max():g} is too large")
    return seg.astype(np.int32, copy=False), head


def read_image(file: str | os.PathLike, *, shape: tuple[int, ...], spacing, label_file: str | os.PathLike) -> dict:
    """Check one image channel against its label map.

    Args:
        file: the image file.
        shape: (Z, Y, X) shape of the label map; spacing: its spacing (mm per array axis).
        label_file: named in errors about a mismatch.

    Returns :func:`read_header`'s dict of the image. Raises :class:`CaseError` naming the file.
    """
    file = Path(file)
    if not file.is_file():
        raise CaseError(file, "image file is missing")
    head = read_header(file)
    if head["channels"] != 1:
        raise CaseError(file, f"image must have one channel per file, got {head['channels']}")
    if tuple(head["shape"]) != tuple(shape):
        raise CaseError(file, f"image shape {tuple(head['shape'])} differs from label shape {tuple(shape)} "
                              f"of {label_file}")
    if not np.allclose(head["spacing"], spacing, rtol=1e-4, atol=1e-5):
        raise CaseError(file, f"image spacing {head['spacing']} differs from label spacing {list(spacing)} "
                              f"of {label_file}")
    img = read_pixels(file, head["shape"])
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        raise CaseError(file, "image contains NaN or infinite intensities")
    return head


def tmp_name(final: Path) -> Path:
    """A temporary sibling of ``final`` that keeps its (possibly double) suffix so writers pick the format."""
    name = final.name
    stem, dot, ext = name.partition(".")
    return final.with_name(f".{stem}.tmp-{uuid.uuid4().hex[:8]}{dot}{ext}")


def write_label(instances: np.ndarray, props: dict, final: Path) -> None:
    """Write a (Z, Y, X) instance map with the geometry in ``props['sitk_stuff']``, atomically (temp + rename).
    A 2D source (shape (1, Y, X)) is written back as 2D.

    uint8 when ids fit, else uint16.
    """
    dtype = np.uint8 if instances.size == 0 or int(instances.max()) < 256 else np.uint16
    geo = props["sitk_stuff"]
    arr = instances.astype(dtype, copy=False)
    img = sitk.GetImageFromArray(arr[0] if len(geo["spacing"]) == 2 else arr)
    img.SetSpacing(geo["spacing"])
    img.SetOrigin(geo["origin"])
    img.SetDirection(geo["direction"])
    tmp = tmp_name(final)
    try:
        sitk.WriteImage(img, str(tmp), True)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def place_image(src: Path, final: Path, *, link: bool = False) -> None:
    """Put image ``src`` at ``final`` (a ``.nii.gz``), atomically: a copy (a hard link with ``link``) when ``src``
    is already a ``.nii.gz``, else a re-encode through SimpleITK.

    Copying is the default because a hard link shares the file: a later in-place edit of the source would
    silently change the merged dataset too."""
    tmp = tmp_name(final)
    try:
        if src.name.endswith(".nii.gz"):
            if link:
                try:
                    os.link(src, tmp)
                except OSError:
                    shutil.copyfile(src, tmp)
            else:
                shutil.copyfile(src, tmp)
        else:
            sitk.WriteImage(sitk.ReadImage(str(src)), str(tmp), True)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def link_or_copy(src: Path, final: Path) -> None:
    """Hard-link (or copy) a file this package wrote into place, atomically (those are only ever replaced by
    rename, never edited in place, so sharing them is safe)."""
    tmp = tmp_name(final)
    try:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
