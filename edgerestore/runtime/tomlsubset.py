"""A small TOML reader for configuration files, with the line of every value. Python 3.6-safe.

Why not a library: Python 3.11 has ``tomllib``, but boards run 3.6–3.10 (a Jetson Nano has 3.6)
and the runtime should not need another wheel just to read ten settings. Why not YAML: PyYAML is
not on every board either, and YAML's implicit typing (``no`` is False, ``08`` is a string, ``1e3``
a string) makes hand-edited service files fragile. This module reads the part of TOML a config
file needs, the same way ``tomllib`` reads it (tests check both agree), and refuses the rest with
the line number:

* ``[table]`` headers (bare names) and ``key = value`` lines, ``#`` comments;
* basic ``"strings"`` with TOML escapes and literal ``'strings'``;
* integers (``1_000``, ``0x1F``, ``0o17``, ``0b101``), floats (``0.5``, ``1e-3``), ``true``/``false``;
* arrays of those, over several lines, with trailing commas and comments.

Not supported (a :class:`TomlError` names the line): dotted/quoted keys, ``[a.b]`` and
``[[arrays of tables]]``, inline tables, multi-line strings, dates and times, ``inf``/``nan``.
"""

import re

__all__ = ["TomlError", "Document", "loads", "load"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INTEGER = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)$")
_PREFIXED = re.compile(r"0(x[0-9A-Fa-f](_?[0-9A-Fa-f])*|o[0-7](_?[0-7])*|b[01](_?[01])*)$")
_FLOAT = re.compile(r"[+-]?(0|[1-9](_?[0-9])*)((\.[0-9](_?[0-9])*)([eE][+-]?[0-9](_?[0-9])*)?|[eE][+-]?[0-9](_?[0-9])*)$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}:\d{2}")
_ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\"}
_VALUE_END = ",]#\n\r \t"


class TomlError(ValueError):
    """A file this reader cannot take; ``line`` is 1-based, the message says what to write instead."""

    def __init__(self, line, message):
        self.line = line
        self.problem = message
        super(TomlError, self).__init__("line %d: %s" % (line, message))


class Document(object):
    """Parsed tables: ``tables[name][key] == (value, line)``; top-level keys live in table ``""``."""

    def __init__(self):
        self.tables = {"": {}}
        self.table_lines = {"": 0}

    def to_dict(self):
        """Plain nested dicts without line numbers (what ``tomllib.loads`` returns)."""
        out = {}
        for name, table in self.tables.items():
            values = dict((key, value) for key, (value, _line) in table.items())
            if name:
                out[name] = values
            else:
                out.update(values)
        return out


class _Scanner(object):
    def __init__(self, text):
        self.text = text
        self.pos = 0
        self.line = 1

    def peek(self, count=1):
        return self.text[self.pos:self.pos + count]

    def at_end(self):
        return self.pos >= len(self.text)

    def advance(self, count=1):
        chunk = self.text[self.pos:self.pos + count]
        self.line += chunk.count("\n")
        self.pos += count
        return chunk

    def skip_blanks(self):
        """Spaces and tabs (not newlines)."""
        while self.peek() in (" ", "\t") and not self.at_end():
            self.pos += 1

    def skip_comment(self):
        if self.peek() == "#":
            while not self.at_end() and self.peek() != "\n":
                self.pos += 1

    def end_of_line(self, what):
        """After a value or header: only blanks and a comment may follow on the line."""
        self.skip_blanks()
        self.skip_comment()
        if self.peek() == "\r":
            self.pos += 1
        if not self.at_end() and self.peek() != "\n":
            rest = self.text[self.pos:].split("\n", 1)[0].strip()
            raise TomlError(self.line, "unexpected %r after %s — one key = value per line" % (rest, what))
        if not self.at_end():
            self.advance()

    def skip_array_space(self):
        """Whitespace, newlines and comments between array items."""
        while not self.at_end():
            char = self.peek()
            if char in " \t\r\n":
                self.advance()
            elif char == "#":
                self.skip_comment()
            else:
                return


def loads(text):
    """Parse TOML ``text`` into a :class:`Document`; raises :class:`TomlError`."""
    if text.startswith("\ufeff"):
        text = text[1:]
    scan = _Scanner(text)
    doc = Document()
    table = doc.tables[""]
    while True:
        scan.skip_array_space()
        if scan.at_end():
            return doc
        line = scan.line
        if scan.peek() == "[":
            table = _table_header(scan, doc)
            continue
        key = _key(scan)
        scan.skip_blanks()
        if scan.peek() != "=":
            raise TomlError(line, "expected '=' after %r — write %s = value" % (key, key))
        scan.advance()
        scan.skip_blanks()
        value = _value(scan, key)
        if key in table:
            raise TomlError(line, "%s is set twice (first on line %d)" % (key, table[key][1]))
        table[key] = (value, line)
        scan.end_of_line("the value of %s" % key)


def load(path):
    """Parse the file at ``path`` (UTF-8)."""
    with open(path, "rb") as handle:
        data = handle.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TomlError(data[:exc.start].count(b"\n") + 1, "not UTF-8 text")
    return loads(text)


def _table_header(scan, doc):
    line = scan.line
    if scan.peek(2) == "[[":
        raise TomlError(line, "arrays of tables ([[...]]) are not supported — use a list value instead")
    scan.advance()
    scan.skip_blanks()
    name = _key(scan, dotted_error=False)
    scan.skip_blanks()
    if scan.peek() == ".":
        raise TomlError(line, "nested tables ([a.b]) are not supported — use one level of [table]")
    if scan.peek() != "]":
        raise TomlError(line, "a table header is [name]")
    scan.advance()
    if name in doc.tables:
        raise TomlError(line, "table [%s] appears twice (first on line %d)" % (name, doc.table_lines.get(name, 0)))
    doc.tables[name] = {}
    doc.table_lines[name] = line
    scan.end_of_line("[%s]" % name)
    return doc.tables[name]


def _key(scan, dotted_error=True):
    line = scan.line
    if scan.peek() in ('"', "'"):
        raise TomlError(line, "quoted keys are not supported — use letters, digits, _ and -")
    match = _BARE_KEY.match(scan.text, scan.pos)
    if not match:
        rest = scan.text[scan.pos:].split("\n", 1)[0].strip()
        raise TomlError(line, "cannot read %r — expected key = value or [table]" % rest)
    scan.pos = match.end()
    if dotted_error and scan.peek() == ".":
        raise TomlError(line, "dotted keys (a.b = ...) are not supported — put the key in a [table]")
    return match.group(0)


def _value(scan, key):
    line = scan.line
    char = scan.peek()
    if char in ("", "\n", "\r", "#"):
        raise TomlError(line, "%s has no value" % key)
    if char == '"':
        if scan.peek(3) == '"""':
            raise TomlError(line, "multi-line strings are not supported — write the value on one line")
        return _basic_string(scan)
    if char == "'":
        if scan.peek(3) == "'''":
            raise TomlError(line, "multi-line strings are not supported — write the value on one line")
        return _literal_string(scan)
    if char == "[":
        return _array(scan, key)
    if char == "{":
        raise TomlError(line, "inline tables ({...}) are not supported — use a [table]")
    start = scan.pos
    while not scan.at_end() and scan.peek() not in _VALUE_END:
        scan.pos += 1
    token = scan.text[start:scan.pos]
    if token == "true":
        return True
    if token == "false":
        return False
    if _INTEGER.match(token):
        return int(token.replace("_", ""))
    if _PREFIXED.match(token):
        return int(token[2:].replace("_", ""), {"x": 16, "o": 8, "b": 2}[token[1]])
    if _FLOAT.match(token):
        value = float(token.replace("_", ""))
        if value in (float("inf"), float("-inf")):
            raise TomlError(line, "%s = %s is too large for a number — write a plain number" % (key, token))
        return value
    if token.lstrip("+-") in ("inf", "nan"):
        raise TomlError(line, "inf and nan are not accepted here — write a number")
    if _DATE.match(token):
        raise TomlError(line, "dates and times are not supported — write them as a string")
    raise TomlError(line, "cannot read the value %r of %s — strings need quotes: %s = \"%s\""
                    % (token, key, key, token))


def _basic_string(scan):
    line = scan.line
    scan.advance()
    out = []
    while True:
        if scan.at_end() or scan.peek() == "\n":
            raise TomlError(line, "a string is not closed — add the closing \"")
        char = scan.advance()
        if char == '"':
            return "".join(out)
        if char != "\\":
            out.append(char)
            continue
        code = scan.advance()
        if code in _ESCAPES:
            out.append(_ESCAPES[code])
        elif code in ("u", "U"):
            width = 4 if code == "u" else 8
            digits = scan.advance(width)
            if len(digits) != width or not re.match(r"[0-9A-Fa-f]+$", digits):
                raise TomlError(line, "\\%s needs %d hex digits" % (code, width))
            value = int(digits, 16)
            if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
                raise TomlError(line, "\\%s%s is not a Unicode scalar value" % (code, digits))
            out.append(chr(value))
        else:
            raise TomlError(line, "unknown escape \\%s in a string — write \\\\ for a backslash, "
                                  "or use 'single quotes' (no escapes)" % code)


def _literal_string(scan):
    line = scan.line
    scan.advance()
    end = scan.text.find("'", scan.pos)
    newline = scan.text.find("\n", scan.pos)
    if end < 0 or (0 <= newline < end):
        raise TomlError(line, "a string is not closed — add the closing '")
    value = scan.text[scan.pos:end]
    scan.pos = end + 1
    return value


MAX_DEPTH = 16
"""Lists nested deeper than this are refused (a line, not a RecursionError)."""


def _array(scan, key):
    line = scan.line
    scan.depth = getattr(scan, "depth", 0) + 1
    if scan.depth > MAX_DEPTH:
        raise TomlError(line, "the lists of %s are nested more than %d deep — no setting takes that" % (key, MAX_DEPTH))
    try:
        return _array_items(scan, key, line)
    finally:
        scan.depth -= 1


def _array_items(scan, key, line):
    scan.advance()
    items = []
    while True:
        scan.skip_array_space()
        if scan.at_end():
            raise TomlError(line, "the list of %s is not closed — add ]" % key)
        if scan.peek() == "]":
            scan.advance()
            return items
        items.append(_value(scan, key))
        scan.skip_array_space()
        if scan.at_end():
            raise TomlError(line, "the list of %s is not closed — add ]" % key)
        if scan.peek() == ",":
            scan.advance()
        elif scan.peek() != "]":
            raise TomlError(scan.line, "items of %s need commas between them" % key)
