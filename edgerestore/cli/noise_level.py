"""``edgerestore noise-level SOURCE``: measure a camera's noise level. Python 3.6-safe."""

import click


@click.command("noise-level")
@click.argument("source", metavar="SOURCE")
@click.option("--frames", "limit", type=click.IntRange(2, 10000), default=60, show_default=True,
              help="Consecutive frames to read.")
def noise_level(source, limit):
    """Measure the sensor-noise level of SOURCE (a camera or a clip) for models with a noise-level
    input: point the camera at a still scene (a wall, a desk, the room) in the light it will
    work in, and run this. Put the number in the service config (`noise_level = N` under
    [model]) or pass it as `--noise-level N` to restore and run; `auto` measures it
    continuously instead, which a busy, moving picture can fool.

    \b
    Examples:
      edgerestore noise-level v4l2:///dev/video0
      edgerestore noise-level picam://0 --frames 120
      edgerestore noise-level call.mp4
    """
    from edgerestore.errors import UnsupportedInputError
    from edgerestore.noiselevel import UNIT, measure_stream
    from edgerestore.runtime.sources import open_source

    opened = open_source(source)
    try:
        if opened.frame_count is not None and opened.frame_count < 2:
            raise UnsupportedInputError("%s is a single picture: the noise level is measured between consecutive "
                                        "frames — give a camera or a video" % source)
        result = measure_stream((frame.image for frame in opened), limit)
    finally:
        opened.close()
    if result["readings"] == 0:
        raise UnsupportedInputError(
            "no reading from %d frame(s) of %s: nothing stayed still from one frame to the next (or the picture "
            "is black or white) — point the camera at a still scene and run again" % (result["frames"], source))
    level = result["level"]
    click.echo("noise level %.2f (noise sigma about %.1f levels of 255; %d readings from %d frames, spread %.2f)"
               % (level, level * UNIT, result["readings"], result["frames"], result["spread"]))
    click.echo("use it: --noise-level %.2f, or noise_level = %.2f under [model] in the service config"
               % (level, level))
