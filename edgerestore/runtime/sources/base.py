"""What all sources share. Python 3.6-safe."""


class Source(object):
    """Iterate to get frames; ``close()`` releases the device or file (also on ``with`` exit)."""

    live = False
    fps = None
    size = None
    frame_count = None

    def __iter__(self):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
