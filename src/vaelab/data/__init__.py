"""Datasets: built-in digits, MNIST, Fashion-MNIST, .npz arrays and image folders."""

from .images import DATASETS, ImageData, binarize, dequantize, load_images, rows

__all__ = ["DATASETS", "ImageData", "binarize", "dequantize", "load_images", "rows"]
