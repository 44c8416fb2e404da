"""The CUDA-graph step's control flow, on the CPU: capture and replay are stood in for by a
function that records a closure and re-runs it, so the static index buffer must be refilled
correctly or the replayed steps train on the wrong rows."""

from contextlib import nullcontext

import pytest
import torch

from vaelab.training import cuda_graphs


def _trainer():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = torch.randn(20, 4)

    def step(storage, idx, beta):
        x = storage[idx]
        loss = beta * ((model(x[:, :3]).squeeze(1) - x[:, 3]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return model, data, step


def _schedule():
    """(idx, beta) per step: KL warm-up first, full batches of 4, a ragged batch of 2 at each epoch's end."""
    g = torch.Generator().manual_seed(1)
    out = []
    for epoch in range(3):
        perm = torch.randperm(18, generator=g)
        for i in range(0, 18, 4):
            out.append((perm[i:i + 4], 0.5 if epoch == 0 and i < 8 else 1.0))
    return out


def _fake_capture(counter):
    def capture(fn):
        counter.append(1)
        out = torch.zeros(())
        return (lambda: out.copy_(fn())), out
    return capture


def test_graphed_steps_train_exactly_like_eager_steps():
    model_a, data, step_a = _trainer()
    eager = [float(step_a(data, idx, beta)) for idx, beta in _schedule()]
    model_b, data, step_b = _trainer()
    captures = []
    run = cuda_graphs.GraphedStep(step_b, lambda: None, side_stream=nullcontext, capture=_fake_capture(captures))
    graphed = [float(run(data, idx, beta)) for idx, beta in _schedule()]
    assert captures == [1]  # captured once, after the warm-up steps
    assert run.warm == cuda_graphs.WARMUP_STEPS and run.replay is not None
    assert graphed == pytest.approx(eager, rel=0, abs=0)
    assert torch.equal(model_a.weight, model_b.weight) and torch.equal(model_a.bias, model_b.bias)


def test_a_failed_capture_warns_once_and_stays_eager():
    model_a, data, step_a = _trainer()
    eager = [float(step_a(data, idx, beta)) for idx, beta in _schedule()]
    model_b, data, step_b = _trainer()
    tries = []

    def broken(fn):
        tries.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    run = cuda_graphs.GraphedStep(step_b, lambda: None, side_stream=nullcontext, capture=broken)
    with pytest.warns(UserWarning, match="training eagerly"):
        got = [float(run(data, idx, beta)) for idx, beta in _schedule()]
    assert tries == [1] and run.failed
    assert got == eager and torch.equal(model_a.weight, model_b.weight)


def test_graphs_only_on_cuda_and_not_under_ddp():
    assert not cuda_graphs.usable(torch.device("cpu"), True, False)
    assert cuda_graphs.usable(torch.device("cuda"), True, False)
    assert not cuda_graphs.usable(torch.device("cuda"), False, False)
    assert not cuda_graphs.usable(torch.device("cuda"), True, True)
