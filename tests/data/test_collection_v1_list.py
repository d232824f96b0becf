"""dataset_lists/nninteractive_v1.yaml against the paper's Table A1 (tests/data/paper_table_A1.md, a copy of the
text extraction with its notes): every row present in order with the published count and modality, targets and
links as printed or with their provenance, the label rules the paper states, Table A2 evaluation-only."""

import re
from pathlib import Path

import pytest
import yaml

from nninteractive_train.data.dataset_list import load_dataset_list

HERE = Path(__file__).resolve().parent
LIST = HERE.parents[1] / "dataset_lists" / "nninteractive_v1.yaml"
TABLE = HERE / "paper_table_A1.md"


def parse_table(path: Path) -> list[dict]:
    """Rows of the markdown table: name (citation brackets removed), images, modality, target, link."""
    rows = []
    for line in path.read_text().splitlines():
        if not line.startswith("| ") or line.startswith("| Name"):
            continue
        name, images, modality, target, link = (c.strip() for c in line.strip().strip("|").split("|"))
        m = re.fullmatch(r"(.*?)\s*\[[\d,\s]+\]", name)
        rows.append({"name": m.group(1) if m else name, "images": int(images), "modality": modality,
                     "target": target, "link": link})
    return rows


def table_a2_names(path: Path) -> list[str]:
    """The held-out datasets the notes list after 'Table A2) are NOT training data:'."""
    text = " ".join(path.read_text().split())
    m = re.search(r"\(Table A2\) are NOT training data: (.*?)\.", text)
    return [re.sub(r"\s*\(.*?\)", "", n).strip() for n in m.group(1).split(",")]


ROWS = parse_table(TABLE)
A2 = table_a2_names(TABLE)
SPEC = load_dataset_list(LIST)  # the real loader: the file parses and passes every check
TRAIN = SPEC.selected()
FIRST_SHIFTED = next(i for i, r in enumerate(ROWS) if r["name"] == "DAP-ATLAS")


def test_fixture_is_the_extraction():
    # the figures the table's notes give: 114 rows summing to 34,982 images, 14 held-out datasets
    assert len(ROWS) == 114 and sum(r["images"] for r in ROWS) == 34_982
    assert len(A2) == 14 and A2[0] == "MS Lesion" and A2[-1] == "Stanford Knee" and "SegRap" in A2


def test_every_row_present_in_order_with_published_count_and_modality():
    assert [d.info["paper_name"] for d in TRAIN] == [r["name"] for r in ROWS]
    for d, r in zip(TRAIN, ROWS):
        assert (d.info["images"], d.info["modality"]) == (r["images"], r["modality"]), d.name
        assert d.source is None, d.name  # left for the user to map
        assert re.sub(r"[^A-Za-z0-9-]+", "_", r["name"]).strip("_") == d.name
    assert sum(d.info["images"] for d in TRAIN) == 34_982


def _target_problem(i: int) -> str | None:
    d, r = TRAIN[i], ROWS[i]
    if d.info.get("targets_from") == "public":
        # only where the extraction shifted the column, and the row as printed is kept in the notes
        if i < FIRST_SHIFTED:
            return "public targets on a row before the shifted part of the table"
        if f"Target {r['target']!r}" not in " ".join(d.info.get("notes", "").split()):
            return "notes lack the row's Target as extracted"
        if not d.info["targets"] or d.info["targets"] == r["target"].split(", "):
            return "marked public but equal to the table's (or empty)"
    elif d.info["targets"] != r["target"].split(", "):
        return f"targets {d.info['targets']} differ from the table's {r['target']!r}"
    return None


def _reference_problem(i: int) -> str | None:
    d, r = TRAIN[i], ROWS[i]
    ref, frm = d.info.get("reference"), d.info.get("reference_from")
    notes = " ".join(d.info.get("notes", "").split())
    if ref is None:  # the row's own link belongs to another dataset: said so, with the row as printed
        if "not in the extraction" not in notes or r["link"] not in notes:
            return "null reference without the reason and the row's link in the notes"
    elif frm is None:
        if ref != r["link"]:
            return f"reference {ref} is not the row's link {r['link']}"
    else:  # moved from the named row, which the shift left it on; never a link the table does not have
        if frm == r["name"] or ref != next((x["link"] for x in ROWS if x["name"] == frm), None):
            return f"reference {ref} is not the link of the {frm!r} row"
        if f"from the {frm} row" not in notes or r["link"] not in notes:
            return "moved reference without its provenance in the notes"
    return None


@pytest.mark.parametrize("check", [_target_problem, _reference_problem])
def test_targets_and_references_against_each_row(check):
    problems = {ROWS[i]["name"]: p for i in range(len(ROWS)) if (p := check(i))}
    assert not problems
    # and what the checks rest on: the shifted part is marked, the reliable part is not
    assert sum(d.info.get("targets_from") == "public" for d in TRAIN) == 65
    assert sum(d.info.get("reference") is None for d in TRAIN) == 8


def test_label_rules_the_paper_states():
    by = {d.info["paper_name"]: d for d in SPEC.datasets}
    assert all(d.rule.objects == "components" for d in TRAIN if d.instance_labels is None)
    liver = by["Decathlon Task 3"]
    assert liver.object_probs == {"liver_with_tumours": 0.25, "liver": 0.25, "cancer": 0.5}
    assert liver.combinations == {"liver_with_tumours": ("liver", "cancer")}
    assert liver.labels["liver"].objects == "whole"
    brats = by["BraTS24"]
    assert set(brats.labels) == {"necrosis", "edema", "enhancing"}
    assert brats.combinations == {"whole_tumour": ("necrosis", "edema", "enhancing"),
                                  "tumour_core": ("necrosis", "enhancing")}
    weights = {d.info["paper_name"]: d.weight for d in TRAIN if d.weight != 1.0}
    assert set(weights) == {"CAP", "BBBC046 FiloData3D", "SegThy 1"}
    assert weights["CAP"] < 1 and weights["BBBC046 FiloData3D"] < 1 and weights["SegThy 1"] > 1
    # instance-map datasets are 3D microscopy only
    assert all("Microscopy" in d.info["modality"] or d.info["modality"] == "MicroCT"
               for d in TRAIN if d.instance_labels is not None)


def test_table_a2_is_evaluation_only():
    held = SPEC.selected(evaluation=True)
    assert [d.info["paper_name"] for d in held] == A2
    # nothing invented: the extraction gives no counts, modalities, targets or links for them
    assert all(set(d.info) == {"paper_name"} and d.source is None for d in held)
    assert not {d.name for d in held} & {d.name for d in TRAIN}
    raw = yaml.safe_load(LIST.read_text())["datasets"]
    assert sum(bool(e.get("evaluation_only")) for e in raw) == 14
