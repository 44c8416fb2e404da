"""The ladder's lower rungs: models with no latent, fitted by EM, scored on the same points."""
