"""precision: auto is a table lookup on hardware facts and torch's version, never a timing; config.toml says why."""

import time
import warnings
from pathlib import Path

import pytest
import torch
from paths import ROOT

import vaelab
from vaelab.errors import VaelabError
from vaelab.runs.folder import RunFolder
from vaelab.runtime import precision

CPU = torch.device("cpu")
SRC = ROOT / "src" / "vaelab"
AVX2 = "fpu sse2 avx avx2 fma"  # an AVX2-only x86 CPU
ZEN4 = AVX2 + " avx512f avx512bw avx512_bf16 avx512_vnni"  # AVX512 with bfloat16 dot products
SAPPHIRE_RAPIDS = ZEN4 + " amx_bf16 amx_tile amx_int8"


@pytest.fixture
def cpu_with(monkeypatch):
    """Pretend the CPU has the given flags, through the one environment variable that fakes them."""
    def set_up(flags: str) -> None:
        monkeypatch.setenv(precision.CPU_FLAGS_ENV, flags)
        monkeypatch.setattr(precision, "_warned", set())
    return set_up


@pytest.mark.parametrize("flags, kind", [(AVX2, "fp32"), (ZEN4, "bf16"), (SAPPHIRE_RAPIDS, "bf16"),
                                         ("fp asimd bf16", "fp32"), ("", "fp32")])
def test_auto_is_the_table_row_of_the_cpu_flags(cpu_with, flags, kind):
    cpu_with(flags)
    decision = precision.decide("auto", CPU)
    assert decision.precision == kind and precision.choose("auto", CPU) == kind
    assert decision.why.startswith("auto: CPU flags ($VAELAB_CPU_FLAGS)")
    assert f"torch {torch.__version__[:4]}" in decision.why
    if "bf16" in flags.split():  # Arm's BF16: native, but not measured, so fp32, and said so
        assert "not been measured" in decision.why


def test_auto_never_times_anything(cpu_with, monkeypatch):
    # the old auto timed a probe, so a busy machine picked fp32 and a quiet one bf16 for the same command
    def no_clock():
        raise AssertionError("auto read a clock")
    for name in ("perf_counter", "perf_counter_ns", "monotonic", "time", "process_time"):
        monkeypatch.setattr(time, name, no_clock)
    for flags in (ZEN4, AVX2):
        cpu_with(flags)
        assert len({precision.choose("auto", CPU) for _ in range(5)}) == 1


def test_other_torch_versions_get_fp32_until_measured(cpu_with, monkeypatch):
    cpu_with(ZEN4)
    monkeypatch.setattr(precision, "_torch_version", lambda: "2.14")
    decision = precision.decide("auto", CPU)
    assert decision.precision == "fp32" and "measured with torch 2.13 only" in decision.why


@pytest.mark.parametrize("capability, kind", [((7, 5), "fp32"), ((8, 0), "tf32"), ((9, 0), "tf32")])
def test_auto_on_cuda_reads_the_compute_capability(monkeypatch, capability, kind):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Some GPU")
    decision = precision.auto(torch.device("cuda"))
    assert decision.precision == kind and f"compute capability {capability[0]}.{capability[1]}" in decision.why


def test_the_flags_are_faked_in_one_place_and_read_from_proc_otherwise(monkeypatch):
    monkeypatch.setenv(precision.CPU_FLAGS_ENV, "avx2,fma  sse2")
    assert precision.cpu_flags() == {"avx2", "fma", "sse2"}
    monkeypatch.delenv(precision.CPU_FLAGS_ENV)
    proc = Path("/proc/cpuinfo")
    if proc.exists():
        line = next((s for s in proc.read_text().splitlines() if s.split(":")[0].strip() in ("flags", "Features")), "")
        assert precision.cpu_flags() == set(line.partition(":")[2].split())
    # runtime/precision.py
    assert sorted(p.name for p in SRC.rglob("*.py") if "VAELAB_CPU_FLAGS" in p.read_text()) == ["precision.py"]


def test_explicit_bf16_without_native_support_warns_once_with_the_reason(cpu_with):
    cpu_with(AVX2)
    with pytest.warns(UserWarning, match="no bfloat16 arithmetic"):
        assert precision.choose("bf16", CPU) == "bf16"  # asked for: kept
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.choose("bf16", CPU) == "bf16"  # the second time is silent
    cpu_with(ZEN4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.choose("bf16", CPU) == "bf16"  # native: nothing to say


def test_bad_names_are_user_errors():
    with pytest.raises(VaelabError, match="CUDA precision"):
        precision.choose("tf32", CPU)
    with pytest.raises(VaelabError, match="precision must be one of"):
        precision.choose("fp16", CPU)


def test_config_toml_records_the_decision_and_why_and_a_resume_keeps_it(tmp_path, cpu_with):
    cpu_with(ZEN4)
    run = vaelab.train(finish=False, out=tmp_path / "r", epochs=1, hidden=(8,), latent_dim=2, device="cpu",
                       log=lambda s: None)
    line = next(s for s in (run / "config.toml").read_text().splitlines() if s.startswith("precision ="))
    assert line.startswith('precision = "bf16"  # auto: CPU flags ($VAELAB_CPU_FLAGS): avx512_bf16;')
    assert RunFolder(run).read_config().precision == "bf16"  # the comment is only a comment
    cpu_with(AVX2)  # resumed elsewhere: the run keeps its precision, and the reason it was chosen
    with pytest.warns(UserWarning, match="no bfloat16 arithmetic"):
        vaelab.train(resume=run, epochs=2, finish=False, log=lambda s: None)
    assert line in (run / "config.toml").read_text().splitlines()
    run = vaelab.train(finish=False, out=tmp_path / "f", epochs=0, hidden=(8,), latent_dim=2, device="cpu",
                       log=lambda s: None)
    assert 'precision = "fp32"  # auto: CPU flags ($VAELAB_CPU_FLAGS): no avx512_bf16/amx_bf16/bf16; torch' in \
        (run / "config.toml").read_text()


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
