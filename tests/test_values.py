"""Every value a user can type: each config key and each command-line flag fed wrong types, zero,
negatives, huge numbers, NaN, inf, empty strings and unknown words. Each is either accepted (the
command runs to the end) or refused with exit 2 and one paragraph, never a traceback."""

import argparse
import contextlib
import io

import pytest

from ganforge.cli import build_parser, main
from ganforge.validation import key_specs
from ganforge.errors import DataError

from .conftest import write_images

VALUES = ["abc", "", "0", "-1", "0.5", "3", "1e30", "99999999999", "nan", "inf", "-inf", "true"]


def _run(args: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            rc = main(args)
        except SystemExit as e:  # argparse's own refusal: usage line + one error line, exit 2
            rc = e.code
    return rc, err.getvalue()


def _check(args: list[str]) -> str | None:
    """None when ``args`` ran or were refused properly; else what went wrong."""
    try:
        rc, err = _run(args)
    except Exception as e:  # noqa: BLE001 -- an escaped exception is what this test looks for
        return f"{args[-2:]}: {type(e).__name__}: {e}"
    if rc not in (0, 2) or "Traceback" in err:
        return f"{args[-2:]}: exit {rc}: {err[-300:]}"
    if rc == 2:
        lines = [ln for ln in err.strip().splitlines() if not ln.startswith("usage:")
                 and not ln.startswith(" ")]
        if len(lines) != 1 or "error" not in lines[0]:
            return f"{args[-2:]}: not one paragraph: {err}"
    return None


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("walk") / "imgs", 8, (16, 16))


def _bases(folder):
    image = ["pokemon-best", "data.name=folder", f"data.path={folder}", "data.resolution=16",
             "train.batch_size=4"]
    return {
        "toy": ["gaussian2d", "data.num_points=64"],
        "dcgan": image,
        "stylegan2": image + ["model.arch=stylegan2", "model.g_width=2", "model.d_width=2"],
        "fastgan": image + ["model.arch=fastgan", "model.g_width=2", "model.d_width=2",
                            "train.augment=", "train.ada=true"],
    }


KEYS = [s.key for s in key_specs()]


@pytest.mark.parametrize("base", ["toy", "dcgan",
                                  pytest.param("stylegan2", marks=pytest.mark.slow),
                                  pytest.param("fastgan", marks=pytest.mark.slow)])
def test_every_config_key_takes_any_value_without_a_traceback(base, image_folder, tmp_path):
    preset, *overrides = _bases(image_folder)[base]
    # The toy walks every value; the image models (whose runs cost more) the values that reach
    # different code: a word, empty, zero, negative, small, huge, not a number.
    values = VALUES if base == "toy" else ["abc", "", "0", "-1", "3", "1e30", "nan"]
    failures = []
    for n, key in enumerate(KEYS):
        for m, value in enumerate(values):
            # A short budget first, so that a huge accepted value of a budget key still ends.
            failures.append(_check(["train", preset, "--out", str(tmp_path / f"r{n}-{m}"), "--quiet",
                    "train.epochs=1", "train.max_minutes=0.02", "report.tensorboard=off",
                    *overrides, f"{key}={value}"]))
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)


def _tiny_array(path):
    import numpy as np

    np.save(path, np.random.default_rng(len(path.name)).integers(0, 256, (3, 8, 8, 3), np.uint8))
    return path


def _flag_commands(run, tmp_path, image_run=None, png=None):
    """Each command with arguments that make an accepted value finish in a second or two."""
    return {
        "serve": ["serve", str(tmp_path / "no-such-run")],  # never starts a server
        "project": ["project", str(image_run), str(png), "--out", str(tmp_path / "p"),
                    "--overwrite", "--quiet", "--steps", "1"],
        "edit": ["edit", str(image_run), "--out", str(tmp_path / "e.png"), "--overwrite"],
        "sample": ["sample", str(run), "--n", "4", "--out", str(tmp_path / "s.npy"),
                   "--overwrite"],
        "evaluate": ["evaluate", str(run), "--quiet"],
        "fid": ["fid", str(_tiny_array(tmp_path / "fa.npy")), str(_tiny_array(tmp_path / "fb.npy")),
                "--backend", "torch", "--quiet"],
        "cache": ["cache"],
        "export": ["export", str(run), "--out", str(tmp_path / "g"), "--overwrite"],
        "report": ["report", str(run), "--out", str(tmp_path / "r.html")],
        "ablate": ["ablate", "gaussian2d", "--vary", "train.seed=0,1", "--seeds", "1",
                   "--out", str(tmp_path / "ab"), "--quiet", "train.epochs=1",
                   "data.num_points=64"],
        "train-classifier": ["train-classifier", "mnist", "--quiet", "--data-dir",
                             str(tmp_path / "empty")],
        "prepare": ["prepare", str(tmp_path / "no-such-folder"), "--quiet"],
        "presets": ["presets"],
    }


def _typed_flags(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for a in sub._actions:
                    if a.option_strings and a.nargs != 0 and not isinstance(a, argparse._HelpAction):
                        yield name, a.option_strings[-1]


def test_every_command_line_flag_takes_any_value_without_a_traceback(tmp_path, monkeypatch,
                                                                    image_folder):
    def no_data(*args, **kwargs):  # an accepted train-classifier call stops at the data
        raise DataError("no data here (the flag's value was accepted)")

    monkeypatch.setattr("ganforge.metrics.classifier.load_idx_dataset", no_data)
    monkeypatch.chdir(tmp_path)  # values given to --out become folders here
    run = tmp_path / "toy"
    assert main(["train", "gaussian2d", "--out", str(run), "--quiet", "train.epochs=1",
                 "report.tensorboard=off"]) == 0
    image_run = tmp_path / "dc"
    assert main(["train", "pokemon-best", "--out", str(image_run), "--quiet", "data.name=folder",
                 f"data.path={image_folder}", "data.resolution=8", "model.g_width=4",
                 "model.d_width=4", "train.epochs=1", "train.batch_size=8",
                 "report.tensorboard=off"]) == 0
    png = next(image_folder.rglob("*.png"))
    commands = _flag_commands(run, tmp_path, image_run, png)
    flags = list(_typed_flags(build_parser()))
    assert len(flags) >= 25
    failures = []
    for command, flag in flags:
        if command == "train":
            base = ["train", "gaussian2d", "--out", str(tmp_path / "t"), "--overwrite", "--quiet",
                    "train.epochs=1"]
        elif command == "download":
            continue  # every value of --dir is a folder name; downloading is tested elsewhere
        else:
            base = commands[command]
        failures += [_check([*base, flag, value]) for value in VALUES]
    failures = [f for f in failures if f]
    assert not failures, "\n".join(failures)
