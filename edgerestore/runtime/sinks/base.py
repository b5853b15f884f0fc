"""What all sinks share. Python 3.6-safe."""


class Sink(object):
    name = "sink"

    def write(self, frame):
        raise NotImplementedError

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
