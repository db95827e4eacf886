"""The bottom room: atomic writes, symlink refusal, JSONL reading, run files."""

import errno
import json
import os

import pytest

from ganforge.cli import main
from ganforge.io import JsonlWriter, atomic_write, load_checkpoint, read_jsonl, write_json
from ganforge.io.atomic import WriteError


def test_atomic_write_replaces_whole_files(tmp_path):
    p = tmp_path / "sub" / "a.json"
    write_json(p, {"x": 1})
    write_json(p, {"x": 2})
    assert json.loads(p.read_text()) == {"x": 2}
    assert [f.name for f in p.parent.iterdir()] == ["a.json"], "no temporary left behind"


def test_a_failed_write_keeps_the_old_file(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")

    def fail(f):
        f.write(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(WriteError, match="No space left on device.*previous file"):
        atomic_write(p, fail)
    assert p.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_a_planted_symlink_is_refused_not_written_through(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    link = tmp_path / "summary.json"
    os.symlink(target, link)
    with pytest.raises(WriteError, match="symbolic link"):
        write_json(link, {"x": 1})
    assert target.read_text() == "precious" and link.is_symlink()


def test_read_jsonl_skips_cut_and_foreign_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    w = JsonlWriter(p)
    w.append({"epoch": 1})
    w.append({"epoch": 2})
    w.close()
    with open(p, "a") as f:
        f.write('[1, 2]\n{"epoch": 3, "loss')  # not an object; a line cut by a crash
    assert read_jsonl(p) == [{"epoch": 1}, {"epoch": 2}]
    assert read_jsonl(tmp_path / "missing.jsonl") == []
    w.reset([{"epoch": 1}])
    assert read_jsonl(p) == [{"epoch": 1}]


def test_refused_resume_leaves_the_config_untouched(tmp_path, capsys):
    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1"]) == 0
    before = (run / "config.json").read_text()
    assert main(["train", "--resume", str(run), "model.d_hidden=7"]) == 2
    assert "does not fit" in capsys.readouterr().err
    assert (run / "config.json").read_text() == before


def test_run_files_record_what_was_asked_and_what_was_resolved(tmp_path):
    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1",
                 "train.precision=auto"]) == 0
    assert json.loads((run / "config.json").read_text())["train"]["precision"] == "auto"
    resolved = json.loads((run / "resolved.json").read_text())
    assert resolved["precision"] in ("fp32", "bf16") and resolved["sample_shape"] == [2]
    assert resolved["examples"] == 1000 and resolved["device"] == "cpu"


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, capsys):
    from .conftest import hold_lock

    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1"]) == 0
    assert not (run / ".lock").exists(), "released at the end"
    holder = hold_lock(run)
    try:
        before = (run / "checkpoint.pt").read_bytes()
        assert main(["train", "--resume", str(run), "train.epochs=2"]) == 2
        assert f"PID {holder.pid}" in capsys.readouterr().err
        assert main(["train", "gaussian2d", "--out", str(run), "--overwrite"]) == 2
        assert (run / "checkpoint.pt").read_bytes() == before, "nothing was touched"
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone (killed: the kernel released its lock): the resume runs
    assert main(["train", "--resume", str(run), "train.epochs=2", "--quiet"]) == 0
    assert load_checkpoint(run)["epoch"] == 2 and not (run / ".lock").exists()


@pytest.mark.parametrize("name", ["metrics.jsonl", "scatter_latest.png", "loss_curve.png"])
def test_resume_never_writes_through_a_planted_symlink(tmp_path, capsys, name):
    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1",
                 "report.tensorboard=off"]) == 0
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    target = run / name
    if target.exists():
        target.unlink()
    os.symlink(outside, target)
    assert main(["train", "--resume", str(run), "--quiet", "train.epochs=2"]) == 2
    err = capsys.readouterr().err
    assert "symbolic link" in err and "Traceback" not in err
    assert outside.read_text() == "precious" and target.is_symlink()


def test_jsonl_append_refuses_a_symlink(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text("")
    os.symlink(outside, tmp_path / "alarms.jsonl")
    with pytest.raises(WriteError, match="symbolic link"):
        JsonlWriter(tmp_path / "alarms.jsonl").append({"alarm": "x"})
    assert outside.read_text() == ""


def test_a_refused_resume_leaves_no_lock(tmp_path):
    run = tmp_path / "r"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1"]) == 0
    (run / "metrics.jsonl").unlink()
    os.symlink(tmp_path / "x", run / "metrics.jsonl")
    assert main(["train", "--resume", str(run), "--quiet", "train.epochs=2"]) == 2
    assert not (run / ".lock").exists()


RACER = """
import random, sys, time
import ganforge.io.lock as L
from ganforge.errors import GanforgeError
root, trials, me = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
start = float(sys.stdin.readline())
L.TAKE_SECONDS = 0  # no retry: a collision is a refusal
held, won = [], []
while time.time() < start:
    pass
order = list(range(trials))
random.Random(me).shuffle(order)
for t in order[: trials // 2] + list(range(trials)):  # half in its own order, then all in step
    if t in won:
        continue
    try:
        held.append(L.RunLock(f"{root}/{t}"))
        won.append(t)
    except GanforgeError:
        pass
print(" ".join(map(str, won)), flush=True)
sys.stdin.readline()  # hold every lock won until all racers are done
"""


def test_exactly_one_of_many_racing_processes_takes_a_run_lock(tmp_path):
    """Four processes race for each of 300 run locks; winners keep theirs, so every run has
    exactly one winner however the tries interleave."""
    import subprocess
    import sys
    import time

    trials = 300
    for t in range(trials):
        (tmp_path / str(t)).mkdir()
    procs = [subprocess.Popen([sys.executable, "-c", RACER, str(tmp_path), str(trials), str(k)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for k in range(4)]
    assert all(p.stdout.readline().strip() == "ready" for p in procs)
    start = time.time() + 0.5
    for p in procs:
        p.stdin.write(f"{start}\n")
        p.stdin.flush()
    wins = [list(map(int, p.stdout.readline().split())) for p in procs]
    for p in procs:
        p.communicate("exit\n", timeout=60)
    counts = [sum(t in w for w in wins) for t in range(trials)]
    assert counts == [1] * trials
    assert sum(1 for w in wins if w) == 4, "every racer won some: their tries interleaved"


def test_a_lock_names_its_holder_and_never_advises_killing_pid_0_or_1(tmp_path):
    from ganforge.io.lock import RunLock, holder, refuse_if_locked

    run = tmp_path / "r"
    run.mkdir()
    (run / ".lock").write_text("1 somehost 0\n")  # left by nobody: not held, whatever it says
    assert holder(run) is None
    refuse_if_locked(run)
    lock = RunLock(run)  # taken over
    assert holder(run) is None, "this process's own lock"
    lock.release()
    assert not (run / ".lock").exists()
    (run / ".lock").write_text("99999999999999999999 host\n")  # an absurd number: never parsed
    RunLock(run).release()
