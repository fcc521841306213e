"""The loss settings a classifier's model.json holds are checked as `train` checks them: an
edited label_smoothing or class_weight is refused when the run is loaded, naming model.json."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

import ffnlp
from ffnlp.errors import ConfigError, ModelFileError
from ffnlp.models.heads import ClassifierHead, MultiLabelHead, check_loss_settings
from ffnlp.tasks.sample import write_sample


@pytest.mark.parametrize(
    ("smoothing", "weights", "message"),
    [
        (1.0, None, "label_smoothing must be >= 0 and < 1; got 1.0"),
        (-0.1, None, "label_smoothing must be >= 0 and < 1; got -0.1"),
        (math.nan, None, "label_smoothing must be >= 0 and < 1; got nan"),
        ("0.1", None, "label_smoothing must be >= 0 and < 1; got '0.1'"),
        (0.0, [1.0, math.nan, 1.0], r"class_weight must be 3 finite positive numbers .*got \[1.0, nan, 1.0\]"),
        (0.0, [1.0, math.inf, 1.0], "class_weight must be 3 finite positive numbers"),
        (0.0, [1.0, 0.0, 1.0], "class_weight must be 3 finite positive numbers"),
        (0.0, [1.0, 2.0], "class_weight must be 3 finite positive numbers"),
        (0.0, [1.0, "2", 1.0], "class_weight must be 3 finite positive numbers"),
    ],
)  # fmt: skip
def test_loss_settings_out_of_range_are_refused(smoothing, weights, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        check_loss_settings(3, smoothing, weights)
    with pytest.raises(ConfigError, match=message):
        ClassifierHead(3, smoothing, weights)
    if weights is None:
        with pytest.raises(ConfigError, match=message):
            MultiLabelHead(3, smoothing)


def test_sound_loss_settings_are_accepted() -> None:
    check_loss_settings(3, 0.0, None)
    check_loss_settings(3, 0.999, [0.5, 1, 2e3])
    assert ClassifierHead(2, 0.1, [1.0, 3.0]).label_smoothing == 0.1


def test_an_edited_model_json_is_refused_at_load(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "d", sizes=(80, 20, 20))
    run = tmp_path / "r"
    ffnlp.train_classifier(data["train"], dev=data["dev"], out=run, overrides=["train.epochs=1"])
    for key, value, message in (
        ("label_smoothing", 2.0, "label_smoothing must be >= 0 and < 1; got 2.0"),
        ("class_weight", [math.nan, 1.0], r"class_weight must be 2 finite positive numbers"),
    ):
        edited = tmp_path / f"edited_{key}"
        shutil.copytree(run, edited)
        arch = json.loads((edited / "model.json").read_text(encoding="utf-8"))
        arch["args"][key] = value
        (edited / "model.json").write_text(json.dumps(arch), encoding="utf-8")
        with pytest.raises(ModelFileError, match=f"{edited / 'model.json'}: .*{message}"):
            ffnlp.load(edited)


def test_train_refuses_class_weights_that_are_not_finite(tmp_path: Path) -> None:
    data = write_sample(tmp_path / "d", sizes=(80, 20, 20))
    for spec in ("nan,1", "inf,1"):
        with pytest.raises(ConfigError, match="loss.class_weight must be 'none', 'balanced' or 2"):
            ffnlp.train_classifier(
                data["train"], out=tmp_path / spec, overrides=[f"loss.class_weight='{spec}'"]
            )
        assert not (tmp_path / spec).exists()
