"""A window on the desktop (X11/Wayland): ``display://0`` when a display server runs. Python 3.6-safe.

Two toolkits, picked in this order by ``?toolkit=auto``:

* ``opencv`` — ``cv2.imshow`` when this OpenCV was built with a GUI (JetPack's and Raspberry Pi
  OS's ``python3-opencv`` are; the ``opencv-python-headless`` wheel is not);
* ``tk`` — Tkinter from the standard library (``sudo apt install python3-tk`` on a board); it
  needs no OpenCV GUI, so it works next to the headless wheel. Installing ``opencv-python``
  (with GUI) beside ``opencv-python-headless`` would make two copies of ``cv2`` fight, so the
  runtime never asks for it.

Fullscreen by default (``?fullscreen=0`` for a normal window). Frames are scaled to fit the
screen keeping their aspect ratio. The window and all calls into the toolkit belong to the thread
that writes frames (the pipeline's output thread). Keys pressed in the window come back from
:meth:`WindowSink.poll_keys`; closing the window counts as ``q``.
"""

import os

from edgerestore.errors import BackendUnavailableError, DeviceError
from edgerestore.runtime.sinks.base import Sink
from edgerestore.runtime.sinks.fit import fit_rect, letterbox, resize

TITLE = "edgerestore"


def has_display_server(environ=None):
    environ = os.environ if environ is None else environ
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def opencv_has_gui():
    """Whether ``cv2.imshow`` can open a window (the headless wheels say ``GUI: NONE``)."""
    try:
        import cv2
    except ImportError:
        return False
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


def tk_available():
    try:
        import tkinter  # noqa: F401
    except ImportError:
        return False
    return True


class TkWindow(object):
    """A borderless Tk window showing RGB frames (PPM data into a PhotoImage: no Pillow needed)."""

    def __init__(self, fullscreen):
        import tkinter

        self._tk = tkinter
        try:
            self.root = tkinter.Tk(className=TITLE)
        except tkinter.TclError as exc:
            raise DeviceError("cannot open a window on display %s (%s) — is the desktop running and "
                              "DISPLAY right? unset DISPLAY to use the framebuffer"
                              % (os.environ.get("DISPLAY"), exc))
        self.root.title(TITLE)
        self.root.configure(background="black")
        self.fullscreen = fullscreen
        self.screen = (self.root.winfo_screenwidth(), self.root.winfo_screenheight())
        if fullscreen:
            self.root.configure(cursor="none")
            # Geometry first: without a window manager the -fullscreen hint alone does nothing.
            self.root.geometry("%dx%d+0+0" % self.screen)
            self.root.attributes("-fullscreen", True)
        self.label = tkinter.Label(self.root, bd=0, highlightthickness=0, background="black")
        self.label.pack(expand=True, fill="both")
        self.photo = None
        self.keys = []
        self.closed = False
        self.root.bind("<Key>", self._on_key)
        self.root.protocol("WM_DELETE_WINDOW", self._on_close)

    def _on_key(self, event):
        if event.char:
            self.keys.append(event.char.lower())
        elif event.keysym == "Escape":
            self.keys.append("q")

    def _on_close(self):
        self.closed = True
        self.keys.append("q")

    def size_for(self, width, height):
        """The canvas size for a frame: the screen when fullscreen, else the frame shrunk to fit."""
        if self.fullscreen:
            return self.screen
        _x, _y, w, h = fit_rect(width, height, min(width, self.screen[0]), min(height, self.screen[1]))
        return w, h

    def show(self, rgb):
        if self.closed:
            return
        height, width = rgb.shape[:2]
        if self.photo is None or (self.photo.width(), self.photo.height()) != (width, height):
            self.photo = self._tk.PhotoImage(width=width, height=height)
            self.label.configure(image=self.photo)
        header = ("P6 %d %d 255\n" % (width, height)).encode("ascii")
        self.photo.configure(data=header + rgb.tobytes(), format="PPM")
        self.pump()

    def pump(self):
        try:
            self.root.update()
        except self._tk.TclError:  # the window was destroyed
            self.closed = True

    def close(self):
        try:
            self.root.destroy()
        except self._tk.TclError:
            pass


class OpenCVWindow(object):
    """``cv2.imshow`` in a (fullscreen) window, for OpenCV builds with a GUI."""

    def __init__(self, fullscreen):
        import cv2

        self._cv2 = cv2
        self.fullscreen = fullscreen
        cv2.namedWindow(TITLE, cv2.WINDOW_NORMAL)
        if fullscreen:
            cv2.setWindowProperty(TITLE, cv2.WND_PROP_FULLSCREEN, cv2.WINDOW_FULLSCREEN)
        self.screen = None
        self.keys = []
        self.closed = False

    def size_for(self, width, height):
        if self.fullscreen:
            try:
                _x, _y, w, h = self._cv2.getWindowImageRect(TITLE)
                if w > 0 and h > 0:
                    return w, h
            except Exception:  # older OpenCV: let the window scale the frame
                pass
        return width, height

    def show(self, rgb):
        self._cv2.imshow(TITLE, rgb[:, :, ::-1])
        self.pump()

    def pump(self):
        key = self._cv2.waitKey(1) & 0xFF
        if key != 0xFF:
            self.keys.append("q" if key == 27 else chr(key).lower())
        if self._cv2.getWindowProperty(TITLE, self._cv2.WND_PROP_VISIBLE) < 1:
            self.closed = True
            self.keys.append("q")

    def close(self):
        self._cv2.destroyWindow(TITLE)


TOOLKITS = {"opencv": OpenCVWindow, "tk": TkWindow}


def pick_toolkit(requested="auto"):
    """``opencv`` when cv2 has a GUI, else ``tk``; an explicit choice is checked."""
    if requested not in ("auto",) + tuple(TOOLKITS):
        from edgerestore.errors import UnknownNameError

        raise UnknownNameError("window toolkit", requested, ("auto",) + tuple(TOOLKITS))
    if requested in ("auto", "opencv") and opencv_has_gui():
        return "opencv"
    if requested == "opencv":
        raise BackendUnavailableError("this OpenCV has no GUI (opencv-python-headless) — use toolkit=tk, "
                                      "or JetPack's / Raspberry Pi OS's python3-opencv")
    if tk_available():
        return "tk"
    raise BackendUnavailableError(
        "no way to open a window: this OpenCV has no GUI and Tkinter is missing — sudo apt install "
        "python3-tk, or unset DISPLAY to draw on the framebuffer"
    )


class WindowSink(Sink):
    """``display://0[?fullscreen=0&toolkit=tk]``: frames in a window, fullscreen by default."""

    name = "window"

    def __init__(self, uri, **_):
        self.toolkit = pick_toolkit(uri.params.get("toolkit", "auto"))
        self.fullscreen = uri.flag("fullscreen", True)
        self._window = None
        self._canvas = None
        self.frames = 0

    def write(self, frame):
        if self._window is None:  # created here: the toolkit belongs to the writing thread
            self._window = TOOLKITS[self.toolkit](self.fullscreen)
        image = frame.image
        width, height = self._window.size_for(image.shape[1], image.shape[0])
        if self.fullscreen:
            self._canvas = letterbox(image, width, height, self._canvas)
            image = self._canvas
        else:
            image = resize(image, width, height)
        self._window.show(image)
        self.frames += 1

    @property
    def closed(self):
        return self._window is not None and self._window.closed

    def poll_keys(self):
        if self._window is None:
            return []
        keys, self._window.keys = self._window.keys, []
        return keys

    def close(self):
        if self._window is not None:
            self._window.close()
            self._window = None
