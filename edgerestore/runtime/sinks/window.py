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
that made the window: the sink's own window thread. Keys pressed in the window come back from
:meth:`WindowSink.poll_keys`; closing the window counts as ``q``.
"""

import os
import queue
import threading

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
            self.photo = self._tk.PhotoImage(master=self.root, width=width, height=height)
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
    """``display://0[?fullscreen=0&toolkit=tk]``: frames in a window, fullscreen by default.

    The window lives on its own thread (GUI toolkits want every call from the thread that made
    the window, and the pipeline closes sinks from another one). ``write`` hands the frame over
    and returns once the window has taken the previous one, so a slow screen slows the output
    stage down — where the pipeline's drop-oldest queues count what is skipped — instead of
    piling frames up here. Between frames the window keeps handling events (keys, close).
    """

    name = "window"

    def __init__(self, uri, **_):
        self.toolkit = pick_toolkit(uri.params.get("toolkit", "auto"))
        self.fullscreen = uri.flag("fullscreen", True)
        self._pending = queue.Queue(maxsize=1)
        self._keys = []
        self._keys_lock = threading.Lock()
        self._ready = threading.Event()
        self._thread = None
        self._error = None
        self.closed = False
        self.frames = 0  # frames shown

    def _start(self):
        self._thread = threading.Thread(target=self._ui_loop, name="edgerestore-window")
        self._thread.daemon = True
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error

    def _collect_keys(self, window):
        if window.keys:
            with self._keys_lock:
                self._keys.extend(window.keys)
            window.keys = []
        if window.closed:
            self.closed = True

    def _ui_loop(self):
        try:
            window = TOOLKITS[self.toolkit](self.fullscreen)
        except Exception as exc:  # noqa: BLE001 - raised in the writer's thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        canvas = None
        try:
            while True:
                try:
                    image = self._pending.get(timeout=0.02)
                except queue.Empty:
                    window.pump()
                    self._collect_keys(window)
                    continue
                if image is None:
                    break
                width, height = window.size_for(image.shape[1], image.shape[0])
                if self.fullscreen:
                    canvas = letterbox(image, width, height, canvas)
                    image = canvas
                else:
                    image = resize(image, width, height)
                window.show(image)
                self.frames += 1
                self._collect_keys(window)
        except Exception as exc:  # noqa: BLE001 - reported by the next write()
            self._error = exc
        finally:
            window.close()

    def write(self, frame):
        if self._thread is None:
            self._start()
        while True:
            if self._error is not None:
                raise self._error
            if not self._thread.is_alive():
                raise DeviceError("the preview window has gone")
            try:
                self._pending.put(frame.image, timeout=0.1)
                return
            except queue.Full:
                continue

    def poll_keys(self):
        with self._keys_lock:
            keys, self._keys = self._keys, []
        return keys

    def close(self):
        if self._thread is None:
            return
        while self._thread.is_alive():
            try:
                self._pending.put(None, timeout=0.1)
                break
            except queue.Full:
                try:
                    self._pending.get_nowait()  # the frame nobody will look at
                except queue.Empty:
                    pass
        self._thread.join(timeout=10.0)
        self._thread = None
