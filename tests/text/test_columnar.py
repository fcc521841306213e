"""Parquet, Arrow and Hugging Face datasets folders as labelled data (pyarrow, an optional extra)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ffnlp.errors import ConfigError, DataError
from ffnlp.text.columnar import columnar_format
from ffnlp.text.readers import read_labeled
from tests.extras import needs

pa = needs("pyarrow")
pq = needs("pyarrow.parquet")
ipc = needs("pyarrow.ipc")

TEXTS = ["a gripping , funny film", "dull and long", "a joy", "flat , lifeless"]
LABELS = ["pos", "neg", "pos", "neg"]


def table(texts: list = TEXTS, labels: list = LABELS, metadata: dict | None = None):  # type: ignore[no-untyped-def]
    t = pa.table({"id": list(range(len(texts))), "review": texts, "stars": labels})
    return t.replace_schema_metadata(metadata) if metadata else t


def write_stream(path: Path, t) -> Path:  # type: ignore[no-untyped-def]
    with pa.OSFile(str(path), "wb") as sink, ipc.new_stream(sink, t.schema) as writer:
        writer.write_table(t)
    return path


def write_ipc_file(path: Path, t) -> Path:  # type: ignore[no-untyped-def]
    with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, t.schema) as writer:
        writer.write_table(t)
    return path


def saved_dataset(folder: Path, labels: list, names: list[str] | None, shards: int = 1) -> Path:
    """A folder laid out as datasets.Dataset.save_to_disk writes it: Arrow streams listed in
    state.json, the features in dataset_info.json and in each file's schema metadata."""
    folder.mkdir(parents=True)
    features = {"review": {"dtype": "string", "_type": "Value"}}
    features["stars"] = (
        {"names": names, "_type": "ClassLabel"} if names else {"dtype": "string", "_type": "Value"}
    )
    meta = {b"huggingface": json.dumps({"info": {"features": features}}).encode()}
    files = []
    per = -(-len(TEXTS) // shards)
    for s in range(shards):
        name = f"data-{s:05d}-of-{shards:05d}.arrow"
        part = table(TEXTS[s * per : (s + 1) * per], labels[s * per : (s + 1) * per], meta)
        write_stream(folder / name, part)
        files.append({"filename": name})
    (folder / "state.json").write_text(json.dumps({"_data_files": files, "_split": "train"}))
    (folder / "dataset_info.json").write_text(json.dumps({"features": features}))
    return folder


COLUMNS = {"text_column": "review", "label_column": "stars"}


def test_parquet_file_with_chosen_columns(tmp_path: Path) -> None:
    path = tmp_path / "train.parquet"
    pq.write_table(table(), path)
    data = read_labeled(path, **COLUMNS)
    assert data.texts == TEXTS and data.labels == LABELS and data.format == "parquet"
    same = read_labeled(path, format="parquet", **COLUMNS)
    assert same.texts == TEXTS


def test_arrow_file_and_stream_and_detection_by_content(tmp_path: Path) -> None:
    for writer, name in (
        (write_ipc_file, "a.arrow"),
        (write_stream, "b.arrow"),
        (write_stream, "noext"),
    ):
        path = writer(tmp_path / name, table())
        assert columnar_format(path) == "arrow"
        data = read_labeled(path, **COLUMNS)
        assert data.texts == TEXTS and data.labels == LABELS and data.format == "arrow"
    no_suffix = tmp_path / "plain"
    pq.write_table(table(), no_suffix)
    assert columnar_format(no_suffix) == "parquet"
    text = tmp_path / "text.txt"
    text.write_text("PAR1 not parquet at all\n", encoding="utf-8")
    assert columnar_format(text) is None
    assert read_labeled(text).labels == ["PAR1"]


def test_a_saved_dataset_folder_with_class_labels(tmp_path: Path) -> None:
    folder = saved_dataset(tmp_path / "train", [1, 0, 1, 0], ["neg", "pos"], shards=2)
    assert columnar_format(folder) == "arrow"
    data = read_labeled(folder, **COLUMNS)
    assert data.texts == TEXTS and data.labels == LABELS
    # the names come from dataset_info.json too when the files carry no metadata
    plain = tmp_path / "plain"
    plain.mkdir()
    write_stream(plain / "data-00000-of-00001.arrow", table(labels=[1, 0, 1, 0]))
    (plain / "state.json").write_text(
        json.dumps({"_data_files": [{"filename": "data-00000-of-00001.arrow"}]})
    )
    (plain / "dataset_info.json").write_text(
        json.dumps({"features": {"stars": {"names": ["neg", "pos"], "_type": "ClassLabel"}}})
    )
    assert read_labeled(plain, **COLUMNS).labels == LABELS


def test_a_folder_of_parquet_files_and_a_dataset_dict(tmp_path: Path) -> None:
    folder = tmp_path / "parts"
    folder.mkdir()
    pq.write_table(table(TEXTS[2:], LABELS[2:]), folder / "part-1.parquet")
    pq.write_table(table(TEXTS[:2], LABELS[:2]), folder / "part-0.parquet")
    assert read_labeled(folder, **COLUMNS).texts == TEXTS  # name order
    splits = tmp_path / "dict"
    saved_dataset(splits / "train", LABELS, None)
    saved_dataset(splits / "test", LABELS, None)
    (splits / "dataset_dict.json").write_text(json.dumps({"splits": ["train", "test"]}))
    with pytest.raises(
        DataError, match=r"holds several splits saved by datasets \(test, train\); pass"
    ):
        read_labeled(splits, **COLUMNS)
    assert read_labeled(splits / "train", **COLUMNS).labels == LABELS


def test_a_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table(), path)
    with pytest.raises(
        DataError,
        match=r"no column 'text' \(choose one with text_column, CLI: --set data.text_column=NAME\); "
        r"the table has the columns 'id', 'review', 'stars'",
    ):
        read_labeled(path, label_column="stars")
    stream = write_stream(tmp_path / "t.arrow", table())
    with pytest.raises(DataError, match="no column 'label'"):
        read_labeled(stream, text_column="review")


@pytest.mark.parametrize(
    ("texts", "labels", "names", "message"),
    [
        (["ok", None], ["a", "b"], None, "row 2: 'review' is null; every row needs a text"),
        (["ok", "fine"], [["a"], ["b"]], None, "row 1: the label is a list; multi-label"),
        (["ok", "fine"], [0.5, 1.5], None, "row 1: the label 0.5 in 'stars' is not a string"),
        (["ok", "fine"], [1, -1], ["neg", "pos"], "row 2: the label is -1 .*without labels"),
        (
            ["ok", "fine"],
            [1, 7],
            ["neg", "pos"],
            r"row 2: the label 7 is not a class of 'stars' \(0..1\)",
        ),
        (["ok", " "], ["a", "b"], None, "row 2: the text is empty"),
        (["ok", "fine"], ["a", ""], None, "row 2: the label is empty"),
    ],
)
def test_bad_rows_are_named_and_can_be_skipped(  # type: ignore[no-untyped-def]
    tmp_path: Path, texts, labels, names, message: str
) -> None:
    if names:
        folder = tmp_path / "ds"
        folder.mkdir()
        feature = {"stars": {"names": names, "_type": "ClassLabel"}}
        meta = {b"huggingface": json.dumps({"info": {"features": feature}}).encode()}
        path = write_stream(folder / "d.arrow", table(texts, labels, meta))
    else:
        path = tmp_path / "d.parquet"
        pq.write_table(table(texts, labels), path)
    with pytest.raises(DataError, match=message + ".*--skip-invalid"):
        read_labeled(path, **COLUMNS)
    if message.startswith("row 1"):  # a column of lists or floats: every row is bad
        with pytest.raises(DataError, match=r"no examples found \(2 invalid rows skipped\)"):
            read_labeled(path, skip_invalid=True, **COLUMNS)
        return
    data = read_labeled(path, skip_invalid=True, **COLUMNS)
    assert data.skipped == 1 and len(data) == 1 and len(data.problems) == 1


def test_unreadable_and_missing_inputs(tmp_path: Path) -> None:
    fake = tmp_path / "fake.parquet"
    fake.write_text("not parquet", encoding="utf-8")
    with pytest.raises(DataError, match="fake.parquet: not a readable parquet file"):
        read_labeled(fake, **COLUMNS)
    with pytest.raises(DataError, match="nothere.parquet: no such file or folder"):
        read_labeled(tmp_path / "nothere.parquet", **COLUMNS)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="a folder with no .arrow or .feather files"):
        read_labeled(empty, format="arrow")


def test_without_pyarrow_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(table(), path)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
    with pytest.raises(
        ConfigError, match=r"needs pyarrow, an optional dependency: pip install 'ffnlp\[parquet\]'"
    ):
        read_labeled(path, **COLUMNS)


def test_train_and_evaluate_a_classifier_from_parquet(tmp_path: Path) -> None:
    from ffnlp.cli.main import app

    path = tmp_path / "train.parquet"
    pq.write_table(table(TEXTS * 10, LABELS * 10), path)
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "classify",
            "train",
            "--train",
            str(path),
            "--out",
            str(tmp_path / "run"),
            "--quiet",
            "--set",
            'data.text_column="review"',
            "--set",
            'data.label_column="stars"',
            "--set",
            "train.epochs=2",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["classify", "eval", str(tmp_path / "run"), "--data", str(path), "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["accuracy"] > 0.5
