"""Densities with no parameters: likelihoods and posteriors, posterior families, the DAE's corruption."""
