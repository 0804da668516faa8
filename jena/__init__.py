"""jena: hyperparameter sweeps and experiment tracking for the Jena 24-hour temperature forecast."""

from .quiet import import_tls_clients as _import_tls_clients

__version__ = "0.1.0"

# psycopg's OpenSSL before TensorFlow's own (any module may import Keras): otherwise the first
# TLS connection to PostgreSQL (sslmode=require) aborts the process. See jena.quiet.
_import_tls_clients()
