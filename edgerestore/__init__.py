"""edgerestore: real-time video restoration on small boards (Raspberry Pi, Jetson, laptops)."""

__version__ = "0.1.0"
