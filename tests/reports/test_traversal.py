"""plot --kind traversal: each row is the decoder at one data point's code with one dimension swept over the
prior's quantiles, checked against the decoder called by hand."""

import numpy as np
import torch
from torch.distributions import Normal

import vaelab
from vaelab.reports import plots, views


def test_traversal_rows_decode_one_swept_dimension_at_the_prior_quantiles(tmp_path, monkeypatch):
    run = vaelab.train(out=tmp_path / "r", data="digits", hidden=(16,), latent_dim=3, epochs=1, device="cpu",
                       finish=False, log=lambda s: None)
    seen = {}
    real = plots.traversal

    def spy(images, path, **kw):
        seen.update(images=images, **kw)
        return real(images, path, **kw)

    monkeypatch.setattr(plots, "traversal", spy)
    view = views.RunView(run)
    path = view.make("traversal")
    assert path.name == "traversal.png" and path.stat().st_size > 0
    steps = 9
    q = Normal(0.0, 1.0).icdf((torch.arange(steps, dtype=torch.float64) + 0.5) / steps)  # the N(0, I) prior's
    assert np.allclose(seen["values"], np.tile(q.numpy(), (3, 1)), atol=1e-6) and seen["dims"] == [0, 1, 2]
    g = torch.Generator().manual_seed(views.PLOT_SEED)
    pick = int(torch.randint(len(view.x), (1,), generator=g))
    with torch.no_grad():
        base = view.model.encode(view.x[pick:pick + 1]).mean[0]  # (3,) the posterior mean
        for j in range(3):
            z = base.repeat(steps, 1)
            z[:, j] = q.float()
            expect = torch.sigmoid(view.model.decoder(z)).reshape(steps, 8, 8).numpy()  # Bernoulli means
            assert np.allclose(seen["images"][j, 1:], expect, atol=1e-6), j
            assert np.array_equal(seen["images"][j, 0], view.x[pick].reshape(8, 8).numpy())  # the data, framed
    assert "traversal" in view.kinds()
    vaelab.report(run)
    assert "Latent traversals" in (run / "report.html").read_text()
