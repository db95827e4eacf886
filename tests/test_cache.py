"""`ganforge cache`: what the user cache holds, and removing it."""

import os
import time

from ganforge import cache
from ganforge.cli import main
from ganforge.data.prepared import prepare_folder

from .conftest import write_images


def test_the_cache_lists_and_removes_prepared_copies(tmp_path, capsys):
    root = write_images(tmp_path / "imgs", 4, (16, 16))
    current, _ = prepare_folder(root, 8, 3)
    other, _ = prepare_folder(root, 16, 3)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert "prepared copy" in out and str(root.resolve()) in out and "2 entries" in out
    write_images(tmp_path / "more", 1, (16, 16))
    (tmp_path / "more" / "0.png").rename(root / "new.png")  # both copies are stale now
    assert {e.path for e in cache.entries() if e.stale} == {current.path, other.path}
    past = time.time() - 10 * 86400
    os.utime(other.path / "images.u8", (past, past))
    os.utime(other.path / "labels.npy", (past, past))
    os.utime(other.path / "meta.json", (past, past))
    assert main(["cache", "--older-than", "5"]) == 0
    assert not other.path.exists() and current.path.exists()
    assert main(["cache", "--stale"]) == 0
    assert not current.path.exists()
    assert "removed 1 entry" in capsys.readouterr().out
    assert main(["cache", "--older-than", "-1"]) == 2
