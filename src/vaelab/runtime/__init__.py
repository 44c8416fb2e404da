"""Where the arithmetic runs: precision, torchrun processes, noise that ignores how a batch is split."""
