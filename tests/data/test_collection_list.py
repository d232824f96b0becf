"""Dataset list parsing and label resolution."""

import textwrap
from pathlib import Path

import pytest

from nninteractive_train.data.dataset_list import (
    DatasetListError,
    LabelRule,
    load_dataset_list,
    resolve_labels,
)

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path, text):
    f = tmp_path / "list.yaml"
    f.write_text(textwrap.dedent(text))
    return f


@pytest.mark.parametrize("name", ["demo.yaml", "nninteractive_v1.yaml"])
def test_shipped_lists_parse(name):
    spec = load_dataset_list(REPO / "dataset_lists" / name)
    assert spec.datasets and len({d.name for d in spec.datasets}) == len(spec.datasets)


def test_defaults_and_overrides(tmp_path):
    f = _write(tmp_path, """
        name: X
        defaults: {min_size: 7, closing: 1}
        datasets:
          - source: 5
            labels: {liver: {objects: whole}}
            channels: [0, 2]
    """)
    spec = load_dataset_list(f)
    (d,) = spec.datasets
    assert d.name == "D005" and d.source == "5" and d.channels == (0, 2)
    assert d.rule == LabelRule(min_size=7, closing=1)
    assert d.labels["liver"] == LabelRule(objects="whole", min_size=7, closing=1)
    assert len(spec.sha256) == 64


@pytest.mark.parametrize("body, needle", [
    ("datasets: []", "non-empty list"),
    ("datasets: [{source: 1, bogus: 3}]", "unknown key"),
    ("datasets: [{source: 1, weight: -1}]", "weight"),
    ("datasets: [{source: 1, objects: blobs}]", "objects must be"),
    ("datasets: [{source: 1, connectivity: 8}]", "connectivity"),
    ("datasets: [{source: 1, min_size: 1.5}]", "min_size"),
    ("datasets: [{source: 1, object_probs: {a: 0.7, b: 0.6}}]", "sum to"),
    ("datasets: [{source: 1, object_probs: {a: 2}}]", "probability"),
    ("datasets: [{source: 1, channels: [0, 0]}]", "channels"),
    ("datasets: [{source: 1, name: A}, {source: 2, name: A}]", "unique"),
    ("datasets: [{weight: 1}]", "needs a 'name' or a 'source'"),
    ("format: 2\ndatasets: [{source: 1}]", "unsupported format"),
    ("datasets: [{source: 1, evaluation_only: yes please}]", "evaluation_only must be"),
    ("defaults: {evaluation_only: true}\ndatasets: [{source: 1}]", "unknown key"),
    ("datasets: [{source: 1, images: -1}]", "images"),
    ("datasets: [{source: 1, images: 1.5}]", "images"),
    ("datasets: [{source: 1, images: true}]", "images"),
    ("datasets: [{source: 1, reference: medicaldecathlon.com}]", "http(s) link"),
    ("datasets: [{source: 1, reference_from: CAP}]", "no reference"),
    ("datasets: [{source: 1, targets_from: paper}]", "targets_from"),
    ("datasets: [{source: 1, targets: Heart}]", "targets must be a list"),
])
def test_bad_lists_name_the_file(tmp_path, body, needle):
    f = _write(tmp_path, body)
    with pytest.raises(DatasetListError) as e:
        load_dataset_list(f)
    assert str(f) in str(e.value) and needle in str(e.value)


def test_informational_and_evaluation_keys(tmp_path):
    f = _write(tmp_path, """
        datasets:
          - {name: A, source: 1, images: 0, reference: "https://x.org/a", targets: [a, b], targets_from: public}
          - {name: B, source: 2, images: null, reference: null, evaluation_only: true}
          - {name: C, source: 3, reference: "http://y.org", reference_from: A}
    """)
    spec = load_dataset_list(f)
    a, b, c = spec.datasets
    assert a.info == {"images": 0, "reference": "https://x.org/a", "targets": ["a", "b"], "targets_from": "public"}
    assert (a.evaluation_only, b.evaluation_only, c.evaluation_only) == (False, True, False)
    assert spec.selected() == (a, c) and spec.selected(evaluation=True) == (b,)


def test_missing_list_file(tmp_path):
    with pytest.raises(DatasetListError, match="not found"):
        load_dataset_list(tmp_path / "nope.yaml")


SOURCE = {"background": 0, "liver": 1, "tumour": 2, "vessel": 3, "ignore": 9}


def _spec(tmp_path, extra):
    f = _write(tmp_path, "datasets:\n  - source: 1\n" + textwrap.indent(textwrap.dedent(extra), "    "))
    return load_dataset_list(f).datasets[0]


def test_resolve_labels(tmp_path):
    spec = _spec(tmp_path, """
        ignore: [vessel]
        labels: {liver: {objects: whole}}
        combinations: {liver_with_tumour: [liver, tumour]}
        object_probs: {liver: 0.3}
    """)
    r = resolve_labels(spec, SOURCE, "here")
    assert r.names == {1: "liver", 2: "tumour"}
    assert r.ignore == frozenset({3, 9})  # the source's ignore label is always ignored
    assert r.rules[1].objects == "whole" and r.rules[2].objects == "components"
    assert r.combinations == {"liver_with_tumour": (1, 2)}
    assert r.types == ("liver", "tumour", "liver_with_tumour")


def test_regions_expand_in_combinations(tmp_path):
    spec = _spec(tmp_path, "combinations: {wt: [whole tumor]}\n")
    r = resolve_labels(spec, {"background": 0, "whole tumor": [1, 2, 3], "tumor core": [2, 3]}, "here")
    assert r.combinations == {"wt": (1, 2, 3)}
    assert r.names == {1: "label_1", 2: "label_2", 3: "label_3"}


@pytest.mark.parametrize("extra, needle", [
    ("combinations: {c: [liver, kidney]}\n", "unknown label 'kidney'"),
    ("ignore: [kidney]\n", "unknown label 'kidney'"),
    ("labels: {kidney: {min_size: 3}}\n", "unknown label 'kidney'"),
    ("object_probs: {kidney: 0.5}\n", "unknown object type 'kidney'"),
    ("combinations: {liver: [liver, tumour]}\n", "also a label name"),
    ("ignore: [vessel]\ncombinations: {c: [liver, vessel]}\n", "ignored label"),
])
def test_resolve_errors(tmp_path, extra, needle):
    spec = _spec(tmp_path, extra)
    with pytest.raises(DatasetListError, match=needle) as e:
        resolve_labels(spec, SOURCE, "list.yaml: dataset 'D001'")
    assert "list.yaml" in str(e.value)
