"""Key presses for the preview from a terminal (the framebuffer has no window). Python 3.6-safe.

On the console of a board without a desktop, the preview's keys (q, s, b) are read from the
terminal in cbreak mode without blocking; the terminal is restored on close.
"""

import os
import sys


class TerminalKeys(object):
    """Non-blocking single-key reads from a tty; does nothing when ``stream`` is not a terminal."""

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stdin
        self._saved = None
        try:
            self.fd = self.stream.fileno()
            self.active = os.isatty(self.fd)
        except (AttributeError, ValueError, OSError):
            self.fd, self.active = None, False
        if self.active:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setcbreak(self.fd)

    def poll(self):
        """The keys pressed since the last call (lower-case characters)."""
        if not self.active:
            return []
        import select

        keys = []
        while select.select([self.fd], [], [], 0)[0]:
            data = os.read(self.fd, 32)
            if not data:
                break
            keys.extend(chr(c).lower() for c in bytearray(data))
        return keys

    def close(self):
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None
