"""gnomon: evaluate foundation models on benchmarks, keep every sample, rank the results."""

__version__ = "0.1.0"
