"""Your own encoder and decoder inside vaelab's VAE: imported by name, rebuilt from their constructor arguments.

    vaelab.train(data=x, encoder=MyEncoder(width=32), decoder=MyDecoder(width=32), latent_dim=8)
    vaelab train --encoder pkg.module:MyEncoder --decoder pkg.module:MyDecoder --set 'encoder_args={"width": 32}'

The contract, for data of shape S per example ((C, H, W) for images, (D,) for flat data), Dz = latent_dim:
    encoder(x)  x (B, *S)  -> (B, 2 * Dz): q(z|x)'s location, then its scale pre-activation (posterior_scale maps it
                              to sigma; by default sigma = exp(h / 2), h a log-variance)
    decoder(z)  z (B, Dz)  -> (B, *S): the raw parameters of p(x|z) per value: logits for likelihood bernoulli
                              (the default), means for gaussian and gaussian-learned (whose variance vaelab learns)
Both are nn.Modules whose classes live at module level in an importable module. A run keeps "module:Class" and
the keyword arguments (config keys encoder, encoder_args, decoder, decoder_args), and every process that trains,
resumes, evaluates or loads the run imports the module and builds fresh networks from them (importlib, never
pickle), under the run's seed: the instances handed to train() give their class and arguments, not their weights.
The arguments are read back as scikit-learn reads an estimator's parameters: each constructor argument is kept as
an attribute of the same name, and its value is JSON (numbers, strings, booleans, lists, None).
The shapes are checked on a two-example probe when the model is built, before a run writes anything.
"""

from __future__ import annotations

import importlib
import inspect
import json
import math
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from . import priors
from .vae import VAE

PROBE = 2  # examples the shape probe runs


def spec_of(net: nn.Module, role: str) -> tuple[str, str]:
    """("module:Class", JSON keyword arguments) that rebuild an instance, refused where they cannot."""
    if not isinstance(net, nn.Module):
        raise ConfigError(f"{role} must be a torch nn.Module (or 'module:Class'), not {type(net).__name__}")
    cls = type(net)
    if "<locals>" in cls.__qualname__:
        raise ConfigError(f"{role} class {cls.__qualname__} is defined inside a function; define it at module level "
                          f"so the run can import it again")
    args: dict[str, Any] = {}
    for name, p in inspect.signature(cls.__init__).parameters.items():
        if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if not hasattr(net, name):
            raise ConfigError(f"{role} {cls.__name__} takes the argument {name!r} but keeps no attribute {name!r}; "
                              f"store each constructor argument as self.{name} so the run can rebuild it")
        args[name] = getattr(net, name)
    try:
        text = json.JSONEncoder(sort_keys=True, allow_nan=False).encode(args)  # strict, as runs/json_text.py
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{role} {cls.__name__}'s arguments must be JSON values (numbers, strings, lists): {e}") \
            from None
    return f"{cls.__module__}:{cls.__qualname__}", text


def import_class(spec: str, role: str) -> type:
    """The nn.Module class named "pkg.module:Class" (importlib), or one ConfigError saying why not."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ConfigError(f"{role} {spec!r} must name a class as pkg.module:Class")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(f"{role} {spec!r}: cannot import module {module!r} ({e}); install it or put its folder on "
                          f"PYTHONPATH") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{role} {spec!r}: module {module!r} has no {name!r}")
        obj = getattr(obj, part)
    if not (isinstance(obj, type) and issubclass(obj, nn.Module)):
        raise ConfigError(f"{role} {spec!r} is not a torch nn.Module class")
    return obj


def _args(text: str, role: str) -> dict[str, Any]:
    try:
        args = json.loads(text) if text else {}
    except json.JSONDecodeError as e:
        raise ConfigError(f"{role}_args must be a JSON object of keyword arguments ({e})") from None
    if not isinstance(args, dict):
        raise ConfigError(f"{role}_args must be a JSON object of keyword arguments, not {type(args).__name__}")
    return args


def instantiate(spec: str, args_text: str, role: str) -> nn.Module:
    """A fresh network from its class name and keyword arguments."""
    cls, args = import_class(spec, role), _args(args_text, role)
    try:
        return cls(**args)
    except Exception as e:  # the user's constructor: any failure is theirs to read, in one line
        raise ConfigError(f"{role} {spec}({', '.join(f'{k}={v!r}' for k, v in args.items())}) failed: "
                          f"{type(e).__name__}: {e}") from None


class Rows(nn.Module):
    """A user network between vaelab's (..., D) rows and its own (B, *in_shape) -> (B, *out_shape) layout."""

    def __init__(self, net: nn.Module, in_shape: tuple[int, ...], out_shape: tuple[int, ...]):
        super().__init__()
        self.net, self.in_shape, self.out_shape = net, in_shape, out_shape

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        lead = v.shape[:-1]  # (K, B) or (B,)
        out = self.net(v.reshape(-1, *self.in_shape))  # (N, *out_shape)
        return out.reshape(*lead, math.prod(self.out_shape))


def _probe(net: nn.Module, x: torch.Tensor, want: tuple[int, ...], role: str, spec: str, what: str) -> None:
    """Run net once on x in eval mode (no batch-norm statistics move, torch's generator is left as it was)."""
    was = net.training
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            out = net.eval()(x)
    except Exception as e:
        raise ConfigError(f"{role} {spec} failed on {what} of shape {tuple(x.shape)}: {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}") from None
    finally:
        net.train(was)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != want:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ConfigError(f"{role} {spec} returned {got} for {what} of shape {tuple(x.shape)}; it must return "
                          f"{want} (models/user_networks.py)")


def build(c, shape: tuple[int, ...], likelihood: str, prior: nn.Module) -> VAE:
    """vaelab's VAE around the config's encoder and decoder classes, their shapes checked on a probe."""
    if not (c.encoder and c.decoder):
        raise ConfigError("your own networks come as a pair: give both encoder and decoder")
    dz, d = c.latent_dim, math.prod(shape)
    enc, dec = instantiate(c.encoder, c.encoder_args, "encoder"), instantiate(c.decoder, c.decoder_args, "decoder")
    _probe(enc, torch.zeros(PROBE, *shape), (PROBE, 2 * dz), "encoder", c.encoder, "x")
    _probe(dec, torch.zeros(PROBE, dz), (PROBE, *shape), "decoder", c.decoder, "z")
    return VAE(Rows(enc, shape, (2 * dz,)), Rows(dec, (dz,), shape), data_dim=d, latent_dim=dz,
               likelihood=likelihood, posterior_scale=c.posterior_scale, posterior=c.posterior,
               prior=prior if prior is not None else priors.build("normal", dz, d))
