"""Import Keras without TensorFlow's C++ start-up lines (absl/oneDNN notices on stderr).

They ignore TF_CPP_MIN_LOG_LEVEL and would scroll through the live displays; Python errors
still surface, since stderr is restored before any exception propagates.
"""

from __future__ import annotations

import os
import sys


def import_keras_quietly() -> None:
    if "keras" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import keras

        if keras.backend.backend() == "tensorflow":
            import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
