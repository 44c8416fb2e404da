"""Bounds and their estimators: the training objectives, dataset-level evaluation, the amortization gap."""
