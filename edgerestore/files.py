"""Small file helpers shared by the host and the board: hashes and the cache folder.

Python 3.6-safe and torch-free (the runtime imports it).
"""

import hashlib
import os


def file_sha256(path):
    """sha256 of a file's bytes (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(str(path), "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_root(*parts):
    """Where derived files live (ONNX exports of checkpoints, engines, teacher outputs, the
    evaluation set): ``$EDGERESTORE_CACHE`` or ``~/.cache/edgerestore``, joined with ``parts``."""
    root = os.environ.get("EDGERESTORE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "edgerestore")
    return os.path.join(root, *parts)
