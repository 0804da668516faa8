"""jena: hyperparameter sweeps and experiment tracking for the Jena 24-hour temperature forecast."""

__version__ = "0.1.0"
