"""Adam over a pack's stacked parameters (dcgan/pack.py): each member's rate, betas and step count
held on the pack's device, so that a step asks the host nothing (on a GPU, a tensor built from
Python floats every step is a copy the host waits for), and a mask of the members that step."""

from __future__ import annotations

import torch
import torch.nn as nn


def block(packed: torch.Tensor, k: int, n: int, rows: int) -> torch.Tensor:
    """Member k's block of a packed parameter, buffer or moment (a view): the first `rows` of its share
    of dim 0, of n members'."""
    return packed[k * (packed.shape[0] // n) :][:rows]


class PackedAdam:
    """torch.optim.Adam's update (its single-tensor form, as on a CPU) on packed parameters, with each
    member's lr, betas and step count, and a mask of the members that step. The per-member values are
    float64 on the device: a member's bias corrections are those Python's floats give its own Adam,
    rounded once to the parameters' dtype."""

    def __init__(self, params: list[nn.Parameter], k: int, eps: float = 1e-8):
        self.params, self.k, self.eps = params, k, eps
        self.exp_avg = [torch.zeros_like(p) for p in params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in params]
        like = dict(dtype=torch.float64, device=params[0].device)
        self.steps, self.lr = torch.zeros(k, **like), torch.zeros(k, **like)
        self.beta1, self.beta2 = torch.full((k,), 0.9, **like), torch.full((k,), 0.999, **like)
        self.masks: dict[tuple[bool, ...], torch.Tensor] = {}  # (on the device, made once each)

    def set_rates(self, k: int, lr: float, betas: tuple[float, float]) -> None:
        self.lr[k], self.beta1[k], self.beta2[k] = lr, betas[0], betas[1]

    def mask(self, active: list[bool]) -> torch.Tensor:
        """The members that step, as a (K,) bool tensor on the device."""
        key = tuple(bool(on) for on in active)
        if key not in self.masks:
            self.masks[key] = torch.tensor(key, device=self.steps.device)
        return self.masks[key]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, active: list[bool]) -> None:
        mask = self.mask(active)
        self.steps += mask
        steps, dtype = self.steps.clamp(min=1), self.params[0].dtype

        def column(values: torch.Tensor) -> torch.Tensor:  # one value a member, against a (K, -1) view
            return values.to(dtype).view(self.k, 1)

        one_minus_b1, b2, one_minus_b2 = column(1 - self.beta1), column(self.beta2), column(1 - self.beta2)
        step_size = column(self.lr / (1 - self.beta1**steps))
        bc2_sqrt = column((1 - self.beta2**steps).sqrt())
        mask = mask.view(self.k, 1)
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            pv, gv, mv, vv = (t.view(self.k, -1) for t in (p, p.grad, m, v))
            new_m = mv.lerp(gv, one_minus_b1)
            new_v = vv * b2 + one_minus_b2 * gv * gv
            denom = new_v.sqrt() / bc2_sqrt + self.eps
            new_p = pv - step_size * (new_m / denom)
            mv.copy_(torch.where(mask, new_m, mv))
            vv.copy_(torch.where(mask, new_v, vv))
            pv.copy_(torch.where(mask, new_p, pv))

    def copy_in(self, k: int, opt: torch.optim.Optimizer, members: list[nn.Parameter]) -> None:
        """Member k's Adam state (its own optimiser's: moments and step count) into the pack."""
        self.steps[k], n = 0, self.k
        with torch.no_grad():
            for p, m, v, q in zip(self.params, self.exp_avg, self.exp_avg_sq, members):
                share = p.shape[0] // n
                state = opt.state.get(q, {})
                for packed, key in ((m, "exp_avg"), (v, "exp_avg_sq")):
                    packed[k * share : (k + 1) * share].zero_()
                    if key in state:
                        block(packed, k, n, q.shape[0]).copy_(state[key])
                if "step" in state:
                    self.steps[k] = float(state["step"])

    def copy_out(self, k: int, opt: torch.optim.Optimizer, members: list[nn.Parameter]) -> None:
        """The pack's state of member k into its own optimiser, as torch.optim.Adam keeps it."""
        steps, n = float(self.steps[k]), self.k
        if steps == 0:
            return
        for p, m, v, q in zip(self.params, self.exp_avg, self.exp_avg_sq, members):
            opt.state[q] = {"step": torch.tensor(steps),
                            "exp_avg": block(m, k, n, q.shape[0]).clone(),
                            "exp_avg_sq": block(v, k, n, q.shape[0]).clone()}
