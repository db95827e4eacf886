"""When the file system refuses: full disks, read-only folders, paths under files, corrupt
results files, other writers. Every case ends in one paragraph and exit 2, nothing computed is
lost, and no file already written is damaged."""

import errno
import json
import os

import pytest
import torch

from ganforge import evaluate as evaluate_module
from ganforge.cli import main
from ganforge.io import atomic_write, load_checkpoint
from ganforge.io.atomic import WriteError
from ganforge.io.lock import enclosing_run

from .conftest import hold_lock


@pytest.fixture
def lock_holder(toy_run):
    """Another live process holding the run's lock."""
    proc = hold_lock(toy_run)
    yield proc
    proc.kill()
    proc.wait()


def _one_paragraph(err: str) -> None:
    assert "Traceback" not in err
    text = err.strip()
    assert text.startswith("ganforge: error:") and "\n\n" not in text, text


def test_torchs_full_disk_error_is_a_write_error_and_keeps_the_old_file(tmp_path):
    p = tmp_path / "checkpoint.pt"
    p.write_bytes(b"old")

    def fail(f):
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . PytorchStreamWriter "
                           "failed writing file data/3: file write failed")

    with pytest.raises(WriteError, match="PytorchStreamWriter failed writing"):
        atomic_write(p, fail)
    assert p.read_bytes() == b"old" and [f.name for f in tmp_path.iterdir()] == ["checkpoint.pt"]
    with pytest.raises(RuntimeError, match="unrelated"):  # other errors are not disguised
        atomic_write(p, lambda f: (_ for _ in ()).throw(RuntimeError("unrelated")))


def test_a_full_disk_during_training_ends_in_exit_2(toy_run, monkeypatch, capsys):
    before = toy_run.joinpath("checkpoint.pt").read_bytes()

    def full_disk(*args, **kwargs):
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    assert main(["train", "--resume", str(toy_run), "--quiet", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    _one_paragraph(err)
    assert "disk full" in err and "resume" in err
    assert toy_run.joinpath("checkpoint.pt").read_bytes() == before, "previous checkpoint intact"
    assert not (toy_run / ".lock").exists()


def test_an_output_path_under_a_file_ends_in_exit_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "gaussian2d", "--out", str(blocker / "run"), "--quiet"]) == 2
    _one_paragraph(capsys.readouterr().err)
    assert blocker.read_text() == "x"


def test_an_unwritable_folder_in_sample_ends_in_exit_2(toy_run, tmp_path, monkeypatch, capsys):
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out.npy"))

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    assert main(["sample", str(toy_run), "--n", "4", "--out", str(tmp_path / "out.npy")]) == 2
    err = capsys.readouterr().err
    _one_paragraph(err)
    assert "Read-only file system" in err


def test_evaluate_prints_its_table_when_eval_json_cannot_be_written(toy_run, monkeypatch,
                                                                   capsys):
    def refuse(path, obj):
        raise WriteError(f"could not write {path}: Read-only file system", "Read-only file system")

    monkeypatch.setattr(evaluate_module, "write_json", refuse)
    assert main(["evaluate", str(toy_run), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert "mean error" in out and "2-Wasserstein" in out, "the results are shown"
    assert "Read-only file system" in err and "not saved" in err and "Traceback" not in err
    assert not (toy_run / ".lock").exists()


def test_a_corrupt_eval_json_is_set_aside_not_fatal(toy_run, capsys):
    (toy_run / "eval.json").write_text('{"checkpoint/exact": {"fid": 1')  # cut by a crash
    assert main(["evaluate", str(toy_run), "--quiet"]) == 0
    err = capsys.readouterr().err
    aside = [p for p in toy_run.iterdir() if p.name.startswith("eval.json.corrupt-")]
    assert len(aside) == 1 and aside[0].read_text().startswith('{"checkpoint')
    assert aside[0].name in err
    records = json.loads((toy_run / "eval.json").read_text())
    assert len(records) == 1 and "mean_error" in next(iter(records.values()))


def test_evaluate_is_refused_while_another_process_writes_the_run(toy_run, lock_holder, capsys):
    assert main(["evaluate", str(toy_run), "--quiet"]) == 2
    assert f"PID {lock_holder.pid}" in capsys.readouterr().err
    assert not (toy_run / "eval.json").exists()


@pytest.mark.parametrize("command", [
    ["sample", "{run}", "--n", "4", "--out", "{run}/more.npy"],
    ["export", "{run}", "--out", "{run}/g.safetensors"],
    ["report", "{run}"],
])
def test_commands_writing_into_a_locked_run_are_refused(toy_run, lock_holder, capsys, command):
    before = sorted(p.name for p in toy_run.iterdir())
    assert main([a.format(run=toy_run) for a in command]) == 2
    assert f"PID {lock_holder.pid}" in capsys.readouterr().err
    assert sorted(p.name for p in toy_run.iterdir()) == before


def test_outputs_outside_runs_need_no_lock_and_locks_are_released(toy_run, tmp_path):
    assert enclosing_run(tmp_path / "elsewhere" / "x.png") is None
    assert enclosing_run(toy_run / "samples" / "x.png") == toy_run.absolute()
    assert main(["sample", str(toy_run), "--n", "4", "--out", str(toy_run / "more.npy")]) == 0
    assert main(["export", str(toy_run), "--out", str(tmp_path / "g")]) == 0
    assert not (toy_run / ".lock").exists()
    assert load_checkpoint(toy_run)["epoch"] == 1


def test_a_planted_tensorboard_link_is_refused(toy_run, tmp_path, capsys):
    pytest.importorskip("torch.utils.tensorboard")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, toy_run / "tensorboard")
    assert main(["train", "--resume", str(toy_run), "--quiet", "train.epochs=2",
                 "report.tensorboard=on"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert list(outside.iterdir()) == []
