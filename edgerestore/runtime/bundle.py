"""Read a bundle on the board and check it (which artifact runs: :mod:`edgerestore.runtime.artifacts`).

A bundle is a folder with ``manifest.json`` and the files it lists (``edgerestore export``
writes it; docs/export.md describes every field). Loading one checks the sha256 of every listed
file (a mismatching or missing file is refused by name: a truncated copy must not run) and,
when the caller says which board this is, that the bundle was made for it.

Torch-free, Python 3.6-safe: this runs on a Jetson Nano.
"""

import json
import os

from edgerestore.devices.profiles import accepts
from edgerestore.errors import BundleError, InputNotFoundError
from edgerestore.files import file_sha256

MANIFEST = "manifest.json"
SCHEMA = 1
TARGET_ENV = "EDGERESTORE_TARGET"


def is_bundle(path):
    """Whether ``path`` is a bundle folder (has a manifest)."""
    return os.path.isdir(str(path)) and os.path.isfile(os.path.join(str(path), MANIFEST))


class Bundle(object):
    """A checked bundle: ``root``, ``manifest`` (dict), ``target`` and ``artifacts`` (manifest order)."""

    def __init__(self, root, manifest):
        self.root = root
        self.manifest = manifest
        self.target = manifest.get("target")
        self.artifacts = list(manifest.get("artifacts", []))

    def path(self, artifact):
        """Absolute path of an artifact's (or any listed file's) file."""
        name = artifact["file"] if isinstance(artifact, dict) else artifact
        return os.path.join(self.root, name)

    def artifact(self, fmt):
        """The artifact of format ``fmt``; BundleError lists the ones present."""
        for artifact in self.artifacts:
            if artifact["format"] == fmt:
                return artifact
        raise BundleError("bundle %s has no %s artifact; it has: %s" % (
            self.root, fmt, ", ".join(a["format"] for a in self.artifacts) or "none"))

    def artifact_for_file(self, path):
        """The artifact whose file is ``path`` (None when the bundle does not list it)."""
        name = os.path.basename(str(path))
        for artifact in self.artifacts:
            if artifact["file"] == name:
                return artifact
        return None

    def describe(self):
        model = self.manifest.get("model", {})
        return "bundle %s: target %s, model %s, %d artifact(s)" % (
            self.root, self.target, model.get("preset") or model.get("source"), len(self.artifacts))


def read_manifest(root):
    path = os.path.join(str(root), MANIFEST)
    if not os.path.isfile(path):
        raise InputNotFoundError("%s is not a bundle: no %s — make one with `edgerestore export`" % (root, MANIFEST))
    try:
        with open(path, "r") as handle:
            manifest = json.load(handle)
    except ValueError as exc:
        raise BundleError("%s is not valid JSON (%s) — re-copy the bundle" % (path, exc))
    if not isinstance(manifest, dict) or manifest.get("schema") != SCHEMA:
        raise BundleError("%s has schema %r, this edgerestore reads schema %d — re-export with this version"
                          % (path, manifest.get("schema") if isinstance(manifest, dict) else None, SCHEMA))
    return manifest


def check_files(root, files):
    """Raise BundleError naming the first file that is missing or whose sha256 differs."""
    for name in sorted(files):
        path = os.path.join(str(root), name)
        if not os.path.isfile(path):
            raise BundleError("bundle %s is incomplete: %s is missing — re-copy the bundle" % (root, name))
        actual = file_sha256(path)
        if actual != files[name]:
            raise BundleError("bundle %s: %s does not match its manifest (sha256 %s..., expected %s...) — "
                              "the file is corrupt or was changed; re-copy or re-export the bundle"
                              % (root, name, actual[:12], files[name][:12]))


def current_target():
    """The board this runs on as a target name, when the user said so (``$EDGERESTORE_TARGET``)."""
    return os.environ.get(TARGET_ENV) or None


def load_bundle(root, expect_target=None, check=True):
    """Read and check the bundle at ``root``.

    ``expect_target`` (default ``$EDGERESTORE_TARGET``) refuses a bundle made for another board;
    ``check`` verifies every file's sha256.
    """
    root = str(root)
    manifest = read_manifest(root)
    files = manifest.get("files") or {}
    for artifact in manifest.get("artifacts", []):
        for name in [artifact["file"]] + list(artifact.get("extra_files", [])):
            if name not in files:
                raise BundleError("bundle %s lists %s without its sha256 — re-export it" % (root, name))
    if check:
        check_files(root, files)
    expect_target = expect_target or current_target()
    target = manifest.get("target")
    if expect_target and not accepts(target, expect_target):
        raise BundleError("bundle %s was made for %s, not %s — export one with `edgerestore export --target %s`"
                          % (root, target, expect_target, expect_target))
    return Bundle(root, manifest)


def find_bundle_for(path):
    """The (unchecked) bundle containing the artifact file ``path``, or None."""
    root = os.path.dirname(os.path.abspath(str(path)))
    if not os.path.isfile(os.path.join(root, MANIFEST)):
        return None
    return Bundle(root, read_manifest(root))
