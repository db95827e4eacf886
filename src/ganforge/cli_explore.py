"""The commands that use a trained generator: ``serve`` (the explorer), ``project`` and ``edit``.
Each parses its arguments and calls one library function."""

from __future__ import annotations

import argparse

from .errors import require_range
from .project import edit, project_images


def cmd_serve(args: argparse.Namespace) -> int:
    require_range("--port", args.port, 0, 65535, "0 picks a free port")
    require_range("--directions", args.directions, 1, 64)
    require_range("--project-steps", args.project_steps, 1, 10_000)
    from .serve import serve  # deferred: the web stack is an optional extra

    serve(args.run, host=args.host, port=args.port, device=args.device,
          directions=args.directions, project_steps=args.project_steps)
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    res = project_images(args.run, args.images, args.out, steps=args.steps, loss=args.loss,
                         init=args.init, wplus=args.wplus, noise=args.noise,
                         class_index=args.class_index, device=args.device, seed=args.seed,
                         overwrite=args.overwrite, ema=not args.no_ema, progress=not args.quiet)
    print(f"wrote {len(res['images'])} projection(s) and projection.json to {args.out}")
    return 0


def cmd_edit(args: argparse.Namespace) -> int:
    res = edit(args.run, args.out, direction=args.direction, strength=args.strength,
               latent=args.latent, seed=args.seed, class_index=args.class_index,
               truncation=args.truncation, strip=args.strip, device=args.device,
               overwrite=args.overwrite, ema=not args.no_ema)
    print(f"direction {args.direction} ({100 * res['share']:.1f}% of the variance, "
          f"{res['space']}-space) at {', '.join(f'{v:+.2f}' for v in res['values'])}: wrote "
          f"{res['image']} and its latent {res['latent']}")
    return 0


def add_explore_commands(sub) -> None:
    sp = sub.add_parser("serve", help="explore a generator in the browser (seeds, directions, "
                                      "truncation, classes, projection)",
                        description="Start a local web app for RUN_OR_EXPORT and print its URL.")
    sp.add_argument("run", metavar="RUN_OR_EXPORT")
    sp.add_argument("--port", type=int, default=8765, help="default 8765; 0 = any free port")
    sp.add_argument("--host", default="127.0.0.1",
                    help="default 127.0.0.1 (this machine only); 0.0.0.0 serves every "
                         "interface, without a password")
    sp.add_argument("--directions", type=int, default=8, help="SeFa sliders (default 8)")
    sp.add_argument("--project-steps", type=int, default=200,
                    help="optimisation steps for an uploaded image (default 200)")
    sp.add_argument("--device", default="cpu")
    sp.set_defaults(func=cmd_serve)

    sp = sub.add_parser("project", help="find the latents that reproduce real images",
                        description="Project each IMAGE into the generator (z, or w for the "
                                    "style-based G) and write the projection, its latent (.npy), "
                                    "a side-by-side PNG, a GIF of the optimisation and "
                                    "projection.json (PSNR, SSIM, feature distance).")
    sp.add_argument("run", metavar="RUN_OR_EXPORT")
    sp.add_argument("images", nargs="+", metavar="IMAGE")
    sp.add_argument("--out", required=True, help="folder for the results")
    sp.add_argument("--steps", type=int, default=300, help="optimisation steps (default 300)")
    sp.add_argument("--loss", default="pixels", choices=["pixels", "d", "inception"],
                    help="distance: multi-scale pixels (default), plus the run's D features, "
                         "or plus TF-Inception features (slow on a CPU); docs/projection.md")
    sp.add_argument("--init", metavar="LATENT.npy", help="start from this latent")
    sp.add_argument("--wplus", action="store_true", help="style-based G: one w per layer")
    sp.add_argument("--noise", action="store_true", help="style-based G: optimise the noise maps")
    sp.add_argument("--class", dest="class_index", type=int,
                    help="conditional G: fix the class (default: the best-matching class)")
    sp.add_argument("--seed", type=int, default=0, help="seeds of the starting candidates")
    sp.add_argument("--no-ema", action="store_true")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--overwrite", action="store_true")
    sp.add_argument("--quiet", action="store_true")
    sp.set_defaults(func=cmd_project)

    sp = sub.add_parser("edit", help="move a seed's or a projection's latent along a direction",
                        description="Add STRENGTH units of SeFa direction K to a latent and "
                                    "write the image (and the edited latent beside it, .npy).")
    sp.add_argument("run", metavar="RUN_OR_EXPORT")
    sp.add_argument("--out", required=True, help="edit.png (the latent goes to edit.npy)")
    sp.add_argument("--latent", metavar="L.npy", help="a latent (from project or serve); "
                                                      "default: the --seed's")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--direction", type=int, default=0, help="direction K (0 = the strongest)")
    sp.add_argument("--strength", type=float, default=3.0,
                    help="how far, in units of the latents' spread along it (default 3)")
    sp.add_argument("--strip", type=int, default=0,
                    help="write N images from -strength to +strength instead of one")
    sp.add_argument("--class", dest="class_index", type=int, help="conditional G: the class")
    sp.add_argument("--truncation", type=float, help="psi in w (style-based G) or |z| <= T")
    sp.add_argument("--no-ema", action="store_true")
    sp.add_argument("--device", default="cpu")
    sp.add_argument("--overwrite", action="store_true")
    sp.set_defaults(func=cmd_edit)
