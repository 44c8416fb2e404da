"""The offline explorer page: a latent plane decoded as the pointer moves."""
