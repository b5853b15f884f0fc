"""The moving test pattern: a live source without hardware."""

import numpy as np
import pytest

from edgerestore.errors import ConfigError, UnknownNameError
from edgerestore.runtime.sources import open_source


class FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_pattern_moves_and_has_the_requested_size():
    source = open_source("test://pattern?size=96x64&realtime=0&frames=5")
    assert source.size == (96, 64) and source.frame_count == 5 and not source.live
    frames = list(source)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    for frame in frames:
        assert frame.image.shape == (64, 96, 3) and frame.image.dtype == np.uint8
    for a, b in zip(frames, frames[1:]):
        assert np.mean(np.abs(a.image.astype(int) - b.image.astype(int))) > 1.0  # it moves
    assert frames[0].image.std() > 40  # bars, checkerboard and gradient: not a flat picture


def test_pattern_is_paced_like_a_camera_and_misses_frames_when_read_late():
    clock = FakeClock()
    source = open_source("test://pattern?size=32x24&fps=10", clock=clock, sleep=clock.sleep)
    assert source.live and source.fps == 10
    iterator = iter(source)
    first = next(iterator)
    second = next(iterator)
    assert clock.sleeps == [pytest.approx(0.1)]  # waited for the next tick
    assert second.pts - first.pts == pytest.approx(0.1)
    clock.now += 0.55  # the reader was busy for 5.5 frame times
    third = next(iterator)
    assert source.missed == 4 and third.pts == pytest.approx(0.6)  # no burst of stale frames


def test_pattern_bad_parameters():
    with pytest.raises(UnknownNameError, match="pattern"):
        open_source("test://bars")
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        open_source("test://pattern?size=big")
