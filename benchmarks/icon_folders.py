"""Build 64x64 icon folders from extracted Debian icon themes, one image per distinct icon.

    apt-get download oxygen-icon-theme moka-icon-theme ...; for f in *.deb; do dpkg-deb -x $f x; done
    python benchmarks/icon_folders.py x/usr/share/icons --themes oxygen --out OXYGEN
    python benchmarks/icon_folders.py x/usr/share/icons --themes Faba Faenza Moka --out ICON-BASE

For each theme and each icon name (context/name), the first of: a 64x64 PNG, the largest PNG above
64 (downscaled with Lanczos), an SVG rendered at 64x64 by ``rsvg-convert``, the largest smaller
PNG (upscaled).
Icons identical after that (the same pixels under another name or theme) are kept once.
Transparency is kept; ganforge composites it on white when it reads the folder.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import re
import subprocess
import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

SIZE = 64


def _size_of(path: Path) -> int:
    """The pixel size a theme's directory names (``64x64`` or ``64``); 0 for ``scalable``."""
    for part in path.parts:
        m = re.fullmatch(r"(\d+)(?:x\d+)?(?:@\d+x)?", part)
        if m:
            return int(m.group(1))
    return 0


def _candidates(theme: Path) -> dict[str, list[Path]]:
    by_name: dict[str, list[Path]] = {}
    for p in theme.rglob("*"):
        if p.suffix.lower() not in (".png", ".svg") or not p.exists():
            continue
        ctx = [q for q in p.relative_to(theme).parts[:-1] if not re.fullmatch(r"[\dx@]+|scalable", q)]
        key = "/".join(ctx[-1:] + [p.stem])
        by_name.setdefault(key, []).append(p)
    return by_name


def _rank(p: Path) -> tuple[int, int]:
    s = _size_of(p)
    if p.suffix.lower() == ".png" and s == SIZE:
        return (0, 0)
    if p.suffix.lower() == ".png" and s > SIZE:
        return (1, -s)
    if p.suffix.lower() == ".svg":
        return (2, 0)
    return (3, -s)


def _load(p: Path) -> Image.Image | None:
    try:
        if p.suffix.lower() == ".svg":
            png = subprocess.run(["rsvg-convert", "-w", str(SIZE), "-h", str(SIZE), "-a", str(p)],
                                 capture_output=True, check=True, timeout=30).stdout
            img = Image.open(io.BytesIO(png))
        else:
            img = Image.open(p)
        img = img.convert("RGBA")
    except (OSError, subprocess.SubprocessError, Image.DecompressionBombError):
        return None
    if img.size != (SIZE, SIZE):
        canvas = Image.new("RGBA", (max(img.size),) * 2, (0, 0, 0, 0))
        canvas.paste(img, ((canvas.width - img.width) // 2, (canvas.height - img.height) // 2))
        img = canvas.resize((SIZE, SIZE), Image.LANCZOS)
    return img


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="a directory of themes (usr/share/icons)")
    ap.add_argument("--themes", nargs="+", required=True, help="the themes to take, by folder name")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    missing = [t for t in args.themes if not (args.root / t).is_dir()]
    if missing:
        ap.error(f"no theme folder {', '.join(missing)} in {args.root}")
    themes = [args.root / t for t in sorted(args.themes)]
    args.out.mkdir(parents=True, exist_ok=False)
    seen: set[str] = set()
    for theme in themes:
        kept = 0
        for key, paths in tqdm(sorted(_candidates(theme).items()), desc=theme.name, unit="icon"):
            for p in sorted(paths, key=_rank):
                img = _load(p)
                if img is None or img.getextrema()[3][1] == 0:
                    continue
                digest = hashlib.sha256(img.tobytes()).hexdigest()
                if digest not in seen:
                    seen.add(digest)
                    img.save(args.out / f"{theme.name}_{key.replace('/', '_')}.png")
                    kept += 1
                break
        print(f"{theme.name}: {kept} icons", file=sys.stderr)
    print(f"{len(seen)} icons in {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
