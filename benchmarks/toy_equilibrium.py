"""Is there an equilibrium where the generator wins? (the d2l basic GAN's exercise)

    python benchmarks/toy_equilibrium.py [--presets gaussian2d gaussian2d-best] [--seeds 0 1 2 3 4]

Trains each preset on the 2-D Gaussian, then asks three questions of the end state, on points
neither network saw (fresh data drawn with another seed, fresh noise):

* the trained D's accuracy on held-out real and generated points, at the loss's decision
  threshold (0.5 = cannot tell them apart);
* the best accuracy *any* discriminator could reach: both distributions are Gaussians known in
  closed form (the data's N(b, A^T A); the linear G's N(c, W W^T)), so the Bayes classifier is
  their likelihood ratio, evaluated by Monte Carlo on 200,000 points;
* an MMD two-sample test (Gaussian kernel, median bandwidth, 500 permutations) between N real and
  N generated held-out points: its p-value says whether N samples suffice to tell them apart
  (p < 0.05: they do).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ganforge.data import GAUSSIAN_A, GAUSSIAN_B, gaussian2d
from ganforge.io import load_checkpoint
from ganforge.losses import DECISION_THRESHOLD
from ganforge.metrics.gaussian import gaussian_fit
from ganforge.models import build_models
from ganforge.presets import from_preset
from ganforge.training import train


def mvn(mean: list[float], cov: list[list[float]]) -> torch.distributions.MultivariateNormal:
    return torch.distributions.MultivariateNormal(torch.tensor(mean, dtype=torch.float64),
                                                  torch.tensor(cov, dtype=torch.float64))


def bayes_accuracy(p, q, n: int = 200_000, seed: int = 0) -> float:
    """Accuracy of the optimal classifier between equally likely p (real) and q (fake)."""
    torch.manual_seed(seed)
    xp, xq = p.sample((n,)), q.sample((n,))
    return 0.5 * float((p.log_prob(xp) > q.log_prob(xp)).double().mean()
                       + (q.log_prob(xq) >= p.log_prob(xq)).double().mean())


def mmd_test(x: torch.Tensor, y: torch.Tensor, perms: int = 500, seed: int = 0) -> tuple[float, float]:
    """MMD^2 (V-statistic, Gaussian kernel with the median heuristic's bandwidth) between the
    rows of ``x`` and ``y`` and its permutation p-value: the share of random relabellings of the
    pooled points whose MMD^2 is at least the observed one."""
    z = torch.cat([x, y]).double()
    d2 = torch.cdist(z, z).pow(2)
    k = torch.exp(-d2 / d2[d2 > 0].median())
    n, m = len(x), len(y)
    gen = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.full((n,), 1.0 / n), torch.full((m,), -1.0 / m)]).double()
    # column 0: the observed labelling; the others: permutations (one matmul for all of them)
    w = torch.stack([labels] + [labels[torch.randperm(n + m, generator=gen)]
                                for _ in range(perms)], dim=1)
    stats = (w * (k @ w)).sum(0)
    observed = float(stats[0])
    p = (1 + int((stats[1:] >= stats[0]).sum())) / (1 + perms)
    return observed, p


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["gaussian2d", "gaussian2d-best"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--n-test", type=int, nargs="+", default=[1000, 10000],
                   help="sample sizes of the two-sample test")
    args = p.parse_args()
    real_dist = mvn(GAUSSIAN_B.tolist(), (GAUSSIAN_A.T @ GAUSSIAN_A).tolist())
    header = ("| preset | seed | D acc. real | D acc. fake | D acc. | best possible acc. | "
              + " | ".join(f"MMD p (N={n:,})" for n in args.n_test) + " |")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            for seed in args.seeds:
                cfg = from_preset(preset, [f"train.seed={seed}"])
                run = train(cfg, Path(tmp) / f"{preset}-{seed}", quiet=True).run_dir
                state = load_checkpoint(run)
                G, D = build_models(cfg.model, (2,), 0)
                D.load_state_dict(state["D"])
                G.load_state_dict(state["G"])  # D was trained against G, not G_ema
                G.eval(), D.eval()
                n = 10_000
                real = gaussian2d(n, seed=10_000 + seed)  # never seen: another seed
                t = DECISION_THRESHOLD[cfg.loss.name]  # 0 for BCE logits, 0.5 for least squares
                with torch.no_grad():
                    fake = G(torch.randn(n, 2, generator=torch.Generator().manual_seed(20_000 + seed)))
                    acc_real = float((D(real).squeeze(-1) > t).float().mean())
                    acc_fake = float((D(fake).squeeze(-1) <= t).float().mean())
                fit = gaussian_fit(G, GAUSSIAN_A, GAUSSIAN_B)
                best = bayes_accuracy(real_dist, mvn(fit["fitted_mean"], fit["fitted_cov"]), seed=seed)
                pvals = [mmd_test(real[:m], fake[:m], seed=seed)[1] for m in args.n_test]
                rows.append((preset, seed, acc_real, acc_fake, (acc_real + acc_fake) / 2, best, pvals))
                print(f"{preset} seed {seed}: D accuracy {(acc_real + acc_fake) / 2:.3f}, best "
                      f"possible {best:.3f}, MMD p {', '.join(f'{v:.3f}' for v in pvals)}",
                      flush=True)
    print()
    print(header)
    print("|---|---:|---:|---:|---:|---:|" + "---:|" * len(args.n_test))
    for preset, seed, ar, af, a, best, pvals in rows:
        print(f"| {preset} | {seed} | {ar:.3f} | {af:.3f} | {a:.3f} | {best:.3f} | "
              + " | ".join(f"{v:.3f}" for v in pvals) + " |")


if __name__ == "__main__":
    main()
