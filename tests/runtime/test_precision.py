"""precision.choose: auto takes bf16/tf32 only where the hardware has it and a probe shows it faster."""

import warnings

import pytest
import torch

import vaelab
from vaelab.errors import VaelabError
from vaelab.runtime import precision

CPU = torch.device("cpu")


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend the CPU has the given /proc/cpuinfo flags and the probe gives (fp32, bf16) seconds."""
    def set_up(flags: set[str], fp32: float = 1.0, bf16: float = 1.0) -> None:
        monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
        monkeypatch.setattr(precision, "probe", lambda kind, device: (fp32, bf16))
        monkeypatch.setattr(precision, "_warned", set())
    return set_up


def test_auto_is_fp32_on_a_cpu_without_bf16_arithmetic(cpu_with):
    cpu_with({"avx2", "fma"}, fp32=1.0, bf16=0.1)  # even a probe saying faster is not asked
    assert precision.choose("auto", CPU) == "fp32"


def test_auto_takes_bf16_only_when_native_and_measured_faster(cpu_with):
    cpu_with({"avx2", "avx512f", "avx512_bf16"}, fp32=1.0, bf16=0.5)
    assert precision.choose("auto", CPU) == "bf16"
    cpu_with({"avx2", "amx_bf16"}, fp32=1.0, bf16=0.9)  # native, but not faster by the margin
    assert precision.choose("auto", CPU) == "fp32"


def test_explicit_bf16_without_native_support_warns_once_with_the_reason(cpu_with):
    cpu_with({"avx2"})
    with pytest.warns(UserWarning, match="no bfloat16 arithmetic"):
        assert precision.choose("bf16", CPU) == "bf16"  # asked for: kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.choose("bf16", CPU) == "bf16"  # the second time is silent
    cpu_with({"avx512_bf16"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.choose("bf16", CPU) == "bf16"  # native: nothing to say


def test_fp32_is_never_probed_and_bad_names_are_user_errors(cpu_with, monkeypatch):
    monkeypatch.setattr(precision, "probe", lambda kind, device: pytest.fail("probed"))
    assert precision.choose("fp32", CPU) == "fp32"
    with pytest.raises(VaelabError, match="CUDA precision"):
        precision.choose("tf32", CPU)
    with pytest.raises(VaelabError, match="precision must be one of"):
        precision.choose("fp16", CPU)


def test_the_probe_leaves_the_random_stream_alone():
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    precision.probe.__wrapped__("bf16", CPU)
    assert torch.equal(torch.rand(4), expected)


def test_a_run_records_the_concrete_precision(tmp_path, monkeypatch):
    asked = []
    monkeypatch.setattr(precision, "choose", lambda requested, device: asked.append(requested) or "bf16")
    run = vaelab.train(finish=False,
                       out=tmp_path / "r", epochs=1, hidden=(8,), latent_dim=2, device="cpu", log=lambda s: None)
    assert asked == ["auto"]  # the default, resolved once
    assert 'precision = "bf16"' in (run / "config.toml").read_text()


@pytest.mark.parametrize("kind", ["fp32", "tf32"])
def test_on_cuda_fp32_switches_cudnn_tf32_off_and_tf32_switches_both_on(kind):
    # cuDNN runs convolutions in tf32 unless told not to, so "fp32" must say so; the flags come back after
    cuda = torch.device("cuda")  # only the flags are touched: no GPU is needed
    flags = torch.backends.cuda.matmul, torch.backends.cudnn
    before = [f.allow_tf32 for f in flags]
    seen = []
    with precision.matmuls(kind, cuda):
        seen = [f.allow_tf32 for f in flags]
    assert seen == [kind == "tf32"] * 2 and [f.allow_tf32 for f in flags] == before
    inside = precision.tf32_step(kind, cuda, lambda: [f.allow_tf32 for f in flags])()  # the training step too
    assert inside == [kind == "tf32"] * 2
