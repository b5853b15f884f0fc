"""``display://N``: the screen. A window when a display server runs, else the framebuffer.

``?mode=window`` or ``?mode=fb`` forces one. Python 3.6-safe.
"""

from edgerestore.errors import UnknownNameError
from edgerestore.runtime.sinks.window import has_display_server

MODES = ("auto", "window", "fb")


def open_display(uri, **options):
    mode = uri.params.get("mode", "auto")
    if mode not in MODES:
        raise UnknownNameError("display mode", mode, MODES)
    if mode == "window" or (mode == "auto" and has_display_server()):
        from edgerestore.runtime.sinks.window import WindowSink

        return WindowSink(uri, **options)
    from edgerestore.runtime.sinks.framebuffer import FramebufferSink
    from edgerestore.runtime.sinks.keys import TerminalKeys

    terminal_keys = options.pop("terminal_keys", True)
    sink = FramebufferSink(uri, **options)
    if sink.keys is None and terminal_keys:
        sink.keys = TerminalKeys()  # after the sink opened: a failure must not leave the tty in cbreak
    return sink
