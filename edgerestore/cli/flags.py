"""click hands a command one keyword per flag; :func:`flags_object` hands them over as one
namedtuple instead. Python 3.6-safe."""

import functools
from collections import namedtuple


def flags_object(func):
    """Put under a command's click decorators: ``func`` then receives one namedtuple of every flag
    (``flags.model``, ``flags.threads``...) instead of a parameter per flag."""
    types = {}

    @functools.wraps(func)
    def command(**flags):
        names = tuple(sorted(flags))
        if names not in types:
            types[names] = namedtuple(func.__name__.title().replace("_", "") + "Flags", names)
        return func(types[names](**flags))

    return command
