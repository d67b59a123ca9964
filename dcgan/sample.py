"""`python -m dcgan.sample`: images from a trained generator, as a PNG grid or an .npy array.

    python -m dcgan.sample runs/digits-20261122                    # the run's latest checkpoint -> samples.png
    python -m dcgan.sample runs/x/checkpoints/step_0000500 --n 100 -o grid.png
    python -m dcgan.sample experiments/ratio_lr-.../tune-<trial_id> --npy samples.npy --seed 1
    python -m dcgan.sample experiments/ratio_lr-...                 # the search's winner (best_config.json)

RUN_OR_CHECKPOINT is a checkpoint folder (it holds state.pt and config.json), or any folder under
which checkpoints lie: a `dcgan.train` run, a search trial's Ray Train run, a `search.train` run;
the checkpoint of the highest step is used. A search's best_config.json, or the search's folder that
holds it, samples its winner: the winning trial's last checkpoint, or a longer run of its config
trained into the experiment, whichever went further; a search's folder without one (not ended) is
refused, never sampled at its newest checkpoint. The line written says which checkpoint was used. The .npy holds uint8 (N, C, H, W) images, the input
`dcgan.evaluate --images` takes. An existing output is never overwritten; bad input prints one
line and exits 2.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from dcgan.checkpoint import generator_checkpoint, load_generator
from dcgan.config import ConfigError
from dcgan.data import to_uint8
from dcgan.files import atomic_write

GEN_BATCH = 500


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dcgan.sample", description=__doc__.splitlines()[0])
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a checkpoint folder, a run folder (latest checkpoint), "
                                                            "or a search's best_config.json (its winner)")
    p.add_argument("--n", type=int, default=64, help="number of images (default 64)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", help="PNG grid to write (default samples.png)")
    out.add_argument("--npy", help=".npy file of uint8 (N, C, H, W) images to write instead of a grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default 0)")
    p.add_argument("--device", default="cpu")
    return p


@torch.no_grad()
def sample(g: torch.nn.Module, n: int, seed: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """uint8 (n, C, H, W) images of G(z), z ~ N(0, 1) seeded by `seed`, G in eval mode."""
    z = torch.randn(n, g.latent_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([to_uint8(g(chunk.to(device))).cpu() for chunk in z.split(GEN_BATCH)])


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    target = Path(args.npy or args.output or "samples.png")
    try:
        if args.n < 1:
            raise ConfigError(f"--n must be >= 1, got {args.n}")
        if target.exists():
            raise ConfigError(f"{target} exists; pass another {'--npy' if args.npy else '-o'}, or remove it")
        if not target.parent.is_dir():
            raise ConfigError(f"folder {target.parent} does not exist; create it or write elsewhere")
        ckpt, which = generator_checkpoint(args.run)
        g, cfg, step = load_generator(ckpt, args.device)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images = sample(g, args.n, args.seed, args.device)
    _write_whole(target, images, as_npy=bool(args.npy))
    print(f"wrote {target}: {args.n} images of {cfg.image_size}px from {ckpt} (step {step}; {which})")
    return 0


def _write_whole(target: Path, images: torch.Tensor, as_npy: bool) -> None:
    """Written to a temporary file beside `target`, then renamed: never half a file."""
    def write(tmp: str) -> None:
        if as_npy:
            with open(tmp, "wb") as f:
                np.save(f, images.numpy())
        else:
            from torchvision.utils import save_image

            save_image(images.float() / 255, tmp, nrow=max(1, int(math.sqrt(len(images)))), format="png")

    atomic_write(target, write)


if __name__ == "__main__":
    sys.exit(main())
