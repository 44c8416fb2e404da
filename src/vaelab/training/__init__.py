"""The training loop and what it writes each epoch: batches, averaging, CUDA graphs, TensorBoard."""
