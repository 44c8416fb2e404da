"""The Gated PixelCNN and the models built on it (exact log p(x) in one pass, cached sampling)."""
