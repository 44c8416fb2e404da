"""M models with the same parameter shapes, run as one: stacked weights and a per-model Adam.

`stacked_model` turns a built model into one whose networks carry a leading model dimension in
every weight, (M, *shape), and take inputs with the model dimension third from the end:
    encoder: x (M, B, D)        -> (M, B, 2*Dz)
    decoder: z (K, M, B, Dz)    -> (K, M, B, D)
The model's own encode/decode/prior and the objectives run on it unchanged, so q(z|x) has batch
shape (M, B), rsample draws (K, M, B, Dz) independent noise, and a Bound's value is (M, B).

Two ways to run a stacked network (benchmarks/bench_sweep.py measures them):
- Linear/ReLU stacks (networks.MLP) as batched matmuls, one baddbmm per layer;
- anything else (the conv networks) with torch.func.vmap over functional_call.
Both give each model the numbers it would compute alone, up to float rounding.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import nn
from torch.func import functional_call, vmap
from torch.optim.adam import adam

MODEL_DIM = -3  # where the model dimension sits in a network's input and output


class LinearStack(nn.Module):
    """M copies of a Linear/ReLU nn.Sequential as batched matmuls."""

    def __init__(self, net: nn.Sequential, params: dict[str, torch.Tensor]):
        super().__init__()
        # per layer: ("linear", weight (M, out, in), bias (M, out) or None) or ("relu",)
        self.layers = [("linear", params[f"{i}.weight"], params.get(f"{i}.bias")) if isinstance(layer, nn.Linear)
                       else ("relu",) for i, layer in enumerate(net)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.movedim(MODEL_DIM, 0)  # (M, ..., B, D_in)
        lead = x.shape[:-1]
        h = x.reshape(lead[0], -1, x.shape[-1])  # (M, R, D_in), R = rows per model
        for layer in self.layers:
            if layer[0] == "relu":
                h = torch.relu(h)
                continue
            _, w, b = layer
            h = torch.bmm(h, w.transpose(1, 2)) if b is None else torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
        return h.reshape(*lead, h.shape[-1]).movedim(0, MODEL_DIM)


class VmapNet(nn.Module):
    """M copies of any network, evaluated with torch.func.vmap over functional_call."""

    def __init__(self, net: nn.Module, params: dict[str, torch.Tensor]):
        super().__init__()
        self.net, self.params = net, params

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = lambda p, xm: functional_call(self.net, p, (xm,))  # noqa: E731  xm (..., B, D_in)
        return vmap(one)(self.params, x.movedim(MODEL_DIM, 0)).movedim(0, MODEL_DIM)


def is_linear_stack(net: nn.Module) -> bool:
    """True for an nn.Sequential of Linear and ReLU layers only (networks.MLP), with Sequential's own forward.

    A subclass with its own forward (networks.BagEncoder takes log(1 + x) first) goes through vmap.
    """
    return (isinstance(net, nn.Sequential) and type(net).forward is nn.Sequential.forward
            and all(isinstance(m, (nn.Linear, nn.ReLU)) for m in net))


def stack_network(net: nn.Module, params: dict[str, torch.Tensor], how: str = "auto") -> nn.Module:
    """A module running M copies of net with the stacked params (names relative to net)."""
    if how == "bmm" or (how == "auto" and is_linear_stack(net)):
        if not is_linear_stack(net):
            raise ValueError(f"{type(net).__name__} is not a Linear/ReLU stack")
        return LinearStack(net, params)
    return VmapNet(net, params)


def stack_parameters(models: Sequence[nn.Module]) -> dict[str, torch.Tensor]:
    """{name: (M, *shape)} leaf tensors holding each model's parameters, in named_parameters order."""
    names = [n for n, _ in models[0].named_parameters()]
    for m in models[1:]:
        shapes = {n: p.shape for n, p in m.named_parameters()}
        if list(shapes) != names or any(shapes[n] != p.shape for n, p in models[0].named_parameters()):
            raise ValueError("models with different parameter shapes cannot be stacked")
    per_model = [dict(m.named_parameters()) for m in models]
    # A Linear weight is (M, out, in) but kept in memory as (M, in, out): the batched product then
    # takes it untransposed, and its gradient arrives in that same layout instead of as a
    # transposed copy (which cost ~15% of a W1-sized step on the CPU).
    linear = {f"{name}.weight" for name, mod in models[0].named_modules() if isinstance(mod, nn.Linear)}
    out = {}
    for n in names:
        t = torch.stack([p[n].detach() for p in per_model])
        out[n] = (t.transpose(1, 2).contiguous().transpose(1, 2) if n in linear else t).requires_grad_()
    return out


def stacked_model(template: nn.Module, params: dict[str, torch.Tensor], how: str = "auto") -> nn.Module:
    """A copy of template that runs M models at once with the stacked params.

    Each child module (the encoder and decoder networks) is replaced by its stacked form. A
    parameter held by the model itself (the learned per-pixel log-variance) becomes a plain
    (M, 1, *shape) tensor, which broadcasts against (..., M, B, *shape) outputs.
    """
    model = copy.deepcopy(template)
    for name, child in model.named_children():
        sub = {k[len(name) + 1:]: v for k, v in params.items() if k.startswith(name + ".")}
        if sub:
            setattr(model, name, stack_network(child, sub, how))
    for name, _ in template.named_parameters(recurse=False):
        delattr(model, name)  # unregister the nn.Parameter so a plain tensor can take its place
        setattr(model, name, params[name].unsqueeze(1))
    return model


def _in_memory_order(t: torch.Tensor) -> torch.Tensor:
    """A Linear weight's slice (out, in) stored as (in, out) is handed to Adam transposed: the
    arithmetic is elementwise, and on a contiguous view the fused kernel runs ~2x faster."""
    if t.dim() >= 2 and not t.is_contiguous() and t.transpose(-1, -2).is_contiguous():
        return t.transpose(-1, -2)
    return t


class StackedAdam:
    """Adam on stacked parameters, each model with its own learning rate and step count.

    The arithmetic is torch's own (torch.optim.adam.adam, with the hyper-parameters of the
    optimizer the trainer would make); each model's slice of every tensor is passed as a view,
    one call per distinct learning rate. A model left out of `active` is not touched at all:
    its weights, moments and step count stay as they are (early stopping, divergence).
    """

    def __init__(self, params: dict[str, torch.Tensor], lrs: Sequence[float], template: torch.optim.Optimizer):
        if type(template) is not torch.optim.Adam:
            raise TypeError(f"StackedAdam mirrors torch.optim.Adam, not {type(template).__name__}")
        self.params, self.lrs = params, list(lrs)
        group = template.param_groups[0]
        self.hyper = {k: group[k] for k in ("weight_decay", "eps", "maximize", "amsgrad", "foreach", "capturable",
                                            "differentiable", "fused", "decoupled_weight_decay")}
        self.betas = group["betas"]
        self.exp_avg = {n: torch.zeros_like(p) for n, p in params.items()}
        self.exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()}
        self.max_exp_avg_sq = {n: torch.zeros_like(p) for n, p in params.items()} if self.hyper["amsgrad"] else {}
        # fused/capturable Adam keeps its step count as a float32 tensor beside the parameter
        on_device = bool(self.hyper["fused"] or self.hyper["capturable"])
        self.steps = {n: torch.zeros(len(self.lrs), dtype=torch.float32, device=p.device if on_device else "cpu")
                      for n, p in params.items()}
        self._views: dict[tuple[int, ...], tuple[list[torch.Tensor], ...]] = {}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, active: Sequence[bool]) -> None:
        """One Adam step for every active model."""
        for lr in sorted({lr for lr, on in zip(self.lrs, active) if on}):
            chosen = tuple(m for m, (r, on) in enumerate(zip(self.lrs, active)) if on and r == lr)
            if chosen not in self._views:  # per-model views of the state, made once per set of models
                pick = lambda d: [_in_memory_order(d[n][m]) for m in chosen for n in self.params]  # noqa: E731
                self._views[chosen] = (pick(self.params), pick(self.exp_avg), pick(self.exp_avg_sq),
                                       pick(self.max_exp_avg_sq) if self.max_exp_avg_sq else [], pick(self.steps))
            params, exp_avg, exp_avg_sq, max_exp_avg_sq, steps = self._views[chosen]
            grads = [_in_memory_order(self.params[n].grad[m]) for m in chosen for n in self.params]
            adam(params, grads, exp_avg, exp_avg_sq, max_exp_avg_sq, steps,
                 beta1=self.betas[0], beta2=self.betas[1], lr=lr, **self.hyper)

    def model_state(self, m: int, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Fill a solo optimizer of model m (same parameter names) with model m's Adam state."""
        for name, p in model.named_parameters():
            state = {"step": self.steps[name][m].clone(), "exp_avg": self.exp_avg[name][m].clone(),
                     "exp_avg_sq": self.exp_avg_sq[name][m].clone()}
            if self.max_exp_avg_sq:
                state["max_exp_avg_sq"] = self.max_exp_avg_sq[name][m].clone()
            optimizer.state[p] = state
