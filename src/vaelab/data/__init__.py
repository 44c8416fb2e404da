"""Datasets: built-in digits, MNIST, Fashion-MNIST, .npz arrays, image folders and text corpora."""

from .corpus import CORPORA, CorpusData, is_corpus, is_corpus_spec, load_corpus
from .images import DATASETS, ImageData, binarize, dequantize, levels, load_images, rows

__all__ = ["CORPORA", "CorpusData", "DATASETS", "ImageData", "binarize", "dequantize", "is_corpus", "is_corpus_spec",
           "levels", "load_corpus", "load_images", "rows"]
