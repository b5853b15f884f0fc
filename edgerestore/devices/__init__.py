"""Board profiles (one table), board detection and per-board setup notes. Torch-free, Python 3.6-safe."""
