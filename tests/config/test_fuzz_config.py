"""Fuzzing the config parser: TOML texts and --set values of random types (issue 11).

Each case ends in a Config whose every field has its declared type and range, or a one-line VaelabError.
"""

import dataclasses
import math
import tempfile
import types
import typing
from pathlib import Path

from fuzzing import outcome
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vaelab.config import schema as cfg

KEYS = sorted(f.name for f in dataclasses.fields(cfg.Config))
scalars = st.one_of(st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from(["digits", "vae", "bernoulli", "exp", "", "1", "true", "0.5", "-1", "x,y", "4 2"]),
                    st.text(max_size=6))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.sampled_from(["a", "b"]), inner,
                                                                       max_size=2)), max_leaves=4)


def fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def lit(v) -> str:
    """A TOML literal for v (the writer tomllib does not have)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + "".join(c if c.isalnum() or c in " .,-_" else f"\\u{ord(c):04x}" for c in v) + '"'
    if isinstance(v, list):
        return "[" + ", ".join(lit(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {lit(x)}" for k, x in v.items()) + "}"


HINTS = typing.get_type_hints(cfg.Config)  # the declared types: int | tuple[int, ...] for latent_dim


def has_type(v, t) -> bool:
    """Whether v is of the declared type t: a union's member, a tuple of t's items, a bool never an int."""
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return any(has_type(v, a) for a in typing.get_args(t))
    if typing.get_origin(t) is tuple:
        return type(v) is tuple and all(has_type(x, typing.get_args(t)[0]) for x in v)
    return v is None if t is type(None) else type(v) is t


def well_typed(c: cfg.Config) -> None:
    """What every accepted config promises: declared types (booleans apart from numbers) and ranges."""
    for f in dataclasses.fields(c):
        v = getattr(c, f.name)
        assert has_type(v, HINTS[f.name]), (f.name, v)
        assert not isinstance(v, float) or math.isfinite(v), f.name
    assert all(h >= 1 for h in c.hidden) and all(d >= 1 for d in cfg.latent_sizes(c))
    assert type(c.latent_dim) is int or len(c.latent_dim) >= 2  # one size reads and saves as an int
    assert 0 <= c.seed < 2**32 and c.epochs >= 0 and c.batch_size >= 1 and c.eval_batch >= 0


@fuzz(2000)
@given(entries=st.dictionaries(st.sampled_from(KEYS + ["bogus"]), values, max_size=4),
       noise=st.one_of(st.none(), st.text(max_size=20)))
@example(entries={"latent_dim": [1, 1], "hidden": [3]}, noise=None)  # a list in TOML: a tuple in the Config
def test_toml_files(entries, noise):
    text = "".join(f"{k} = {lit(v)}\n" for k, v in entries.items()) if noise is None else noise
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        c = outcome(cfg.load, path)
    if c is not None:
        well_typed(c)


@fuzz(3000)
@given(items=st.lists(st.tuples(st.sampled_from(KEYS + ["bogus", ""]),
                                st.one_of(values.map(lit), st.text(max_size=10))), min_size=1, max_size=3))
@example(items=[("latent_dim", "[1, 1]")])  # two layers of one unit: a tuple, which the old check took for a bad int
@example(items=[("latent_dim", "[4]"), ("hidden", "7")])  # one size stays an int; hidden is always a tuple
def test_set_values(items):
    def parse():
        return cfg.from_dict(cfg.parse_set([f"{k}={v}" for k, v in items]))
    c = outcome(parse)
    if c is not None:
        well_typed(c)
