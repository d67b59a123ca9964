"""The training step captured in a CUDA graph and replayed (`cuda_graph=true`, a GPU, one process).

A DCGAN this small leaves a GPU waiting on the CPU that launches its many tiny kernels; a graph
launches a whole step at once (one model on an H200: 14,400 images/s eager, 54,400 captured, in
issue 33's stand-alone measurement; this code's gain is not measured yet). The step captured is `dcgan.train.train_step` itself, in the form that asks
the host nothing; what the eager step does that a replayed graph cannot, and what is done instead:

- Adam's rates and betas are Python floats, which a graph would replay as captured: they become
  one-element tensors on the device (`dcgan.state.make_capturable`), which a schedule's change
  (`apply_hyperparameters`) fills in place; checkpoints keep the floats (`optimizer_state`).
- AveragedModel asks the host whether it has averaged yet: the captured step averages in place
  (`dcgan.state.average_in_place`), the first average made by the eager warm-up.
- The real batches are drawn by the sampler (its order on the host): drawn eagerly every step and
  copied into the graph's input buffers.
- z, the gradient penalty's mixing weights and the augmentations are drawn from the run's own
  generator, registered with the graph: each replay advances it as the eager draws would.
- The losses' running sums are added to in place (GAN.sum_losses; evaluations zero them in place).
- The D:G ratio is how many D updates the graph holds: a new ratio is captured again.

The first WARMUP steps of a graph run eagerly on a side stream (Adam's state, the sums' tensors and
the average begin there, as PyTorch's notes on CUDA graphs ask); the next step is captured and
replayed, and later steps replay it. Under DDP, gradients are all-reduced between the kernels, and
compiled networks capture graphs of their own: neither goes with a captured step. A checkpoint loaded
into the GAN after capture replaces tensors the graph holds: build the stepper after any restore.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from dcgan.config import ConfigError
from dcgan.state import GAN, make_capturable

Step = Callable[..., torch.Tensor]  # dcgan.train.train_step: (gan, reals=None) -> the diverged flag
WARMUP = 3  # eager steps on a side stream before a graph is captured


def stepper(gan: GAN, step: Step) -> Callable[[GAN], torch.Tensor]:
    """`step`, or a CapturedStep of it where gan.cfg.cuda_graph asks for one."""
    return CapturedStep(gan, step) if gan.cfg.cuda_graph else step


class CapturedStep:
    """One generator update of `gan` per call, as `step(gan)` does, from a CUDA graph of it."""

    def __init__(self, gan: GAN, step: Step):
        if gan.world > 1:  # (its device and compile=false: dcgan.distributed.check_device, TrainConfig)
            raise ConfigError("cuda_graph=true captures one process's step, and DDP all-reduces between its kernels; "
                              "drop it or train with one worker")
        self.step, self.stream = step, torch.cuda.Stream(gan.device)
        self.graph: Optional[torch.cuda.CUDAGraph] = None
        self.ratio, self.eager = None, 0
        self.reals: list[torch.Tensor] = []
        self.flag: Optional[torch.Tensor] = None
        for opt in (gan.opt_g, gan.opt_d):
            make_capturable(opt, gan.device)

    def __call__(self, gan: GAN) -> torch.Tensor:
        if gan.cfg.d_steps_per_g != self.ratio:  # (a schedule's new ratio) another graph, warmed up again
            self.graph, self.ratio, self.eager = None, gan.cfg.d_steps_per_g, 0
        if self.graph is None and self.eager < WARMUP:
            self.eager += 1
            return self._on_side_stream(lambda: self.step(gan))
        reals = [gan.sampler.next() for _ in range(self.ratio)]
        if self.graph is None:
            self._capture(gan, reals)  # the step's host-side counts move here, once
        else:
            gan.step, gan.n_summed = gan.step + 1, gan.n_summed + 1
        for buffer, real in zip(self.reals, reals):
            buffer.copy_(real)
        self.graph.replay()
        return self.flag

    def _capture(self, gan: GAN, reals: list[torch.Tensor]) -> None:
        self.reals = [real.clone() for real in reals]
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(gan.noise)
        for opt in (gan.opt_g, gan.opt_d):
            opt.zero_grad(set_to_none=True)  # the gradients are the graph's own tensors
        torch.cuda.synchronize(gan.device)
        with torch.cuda.graph(graph, stream=self.stream):
            self.flag = self.step(gan, self.reals)
        self.graph = graph

    def _on_side_stream(self, run: Callable[[], torch.Tensor]) -> torch.Tensor:
        here = torch.cuda.current_stream(self.stream.device)
        self.stream.wait_stream(here)
        with torch.cuda.stream(self.stream):
            flag = run()
        here.wait_stream(self.stream)
        flag.record_stream(here)
        return flag
