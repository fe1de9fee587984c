"""Model listings under symlinks: each real folder once, loops ignored, a time budget, links to model folders kept
(issue 12, point 5)."""
import json
import logging
import os
import time
from pathlib import Path

import pytest

from zeroshot_video.core.loading import listings as model_files


def _model(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "TextToVideoSDPipeline"}))
    return folder


def test_a_symlink_loop_lists_each_model_once(tmp_path):
    root = tmp_path / "diffusers"
    _model(root / "a")
    _model(root / "group" / "b")
    os.symlink(root, root / "group" / "loop")  # back up to the root: without care, a/, group/b, loop/a, … forever
    os.symlink("..", root / "group" / "up")
    assert list(model_files.diffusers_models([root])) == ["a", "group/b"]


def test_a_symlinked_model_folder_outside_the_root_is_listed_under_its_link_name(tmp_path):
    elsewhere = _model(tmp_path / "disk2" / "zeroscope")
    root = tmp_path / "diffusers"
    root.mkdir()
    os.symlink(elsewhere, root / "my-zeroscope")
    listing = model_files.diffusers_models([root])
    assert listing == {"my-zeroscope": root / "my-zeroscope"}
    assert model_files.resolve("my-zeroscope", listing, "diffusers model folder", [root]) == root / "my-zeroscope"
    os.symlink(elsewhere.parent, root / "disk2")  # a linked folder of models works too
    assert list(model_files.diffusers_models([root / "disk2"])) == ["zeroscope"]
    both = model_files.diffusers_models([root])  # two ways to one real folder: listed once
    assert len(both) == 1 and set(both) < {"my-zeroscope", "disk2/zeroscope"}


def test_a_root_listed_twice_or_inside_another_adds_nothing(tmp_path):
    root = tmp_path / "models"
    _model(root / "sub" / "m")
    assert list(model_files.diffusers_models([root, root, root / "sub"])) == ["sub/m"]


def test_the_walk_stops_at_the_depth_limit(tmp_path):
    root = tmp_path / "diffusers"
    _model(root.joinpath(*["d"] * model_files.MAX_DEPTH, "deep-enough"))
    _model(root.joinpath(*["d"] * (model_files.MAX_DEPTH + 1), "too-deep"))
    assert list(model_files.diffusers_models([root])) == ["/".join(["d"] * model_files.MAX_DEPTH + ["deep-enough"])]


def test_a_walk_that_runs_out_of_time_stops_and_says_so(tmp_path, monkeypatch, caplog):
    root = tmp_path / "diffusers"
    _model(root / "a-model")
    for i in range(30):
        (root / "big" / f"dir{i}" / "sub").mkdir(parents=True)
    _model(root / "z-model")
    ticks = iter(range(10 ** 6))
    monkeypatch.setattr(model_files, "monotonic", lambda: next(ticks) * 0.1)  # each look costs 0.1 s
    with caplog.at_level(logging.WARNING, logger=model_files.__name__):
        listing = model_files.diffusers_models([root])
    # the models beside the big folder are listed before the walk goes into it and runs out of time there
    assert "a-model" in listing and "z-model" in listing
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(f"Listing models stopped after {model_files.WALK_SECONDS:.0f} s in '{root / 'big'}")


@pytest.mark.skipif(not Path("/usr/lib").is_dir(), reason="needs a large system folder to link to")
def test_a_link_to_a_system_folder_costs_at_most_the_time_budget(tmp_path):
    root = tmp_path / "diffusers"
    _model(root / "m")
    os.symlink("/usr", root / "usr")
    started = time.monotonic()
    listing = model_files.weight_files([root])
    assert time.monotonic() - started < model_files.WALK_SECONDS + 1.5
    assert "m" not in listing  # model_index folders are not weight files; the walk must still end
