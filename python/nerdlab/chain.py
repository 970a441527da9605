"""Split a wrapped Go error message into its layers, outermost first.

Go code wraps errors as ``fmt.Errorf("context: %w", err)``, so a printed error is its
layers joined by ": ". Paths and URIs carry colons of their own
(``binary:///usr/local/bin/nerdctl?...``) and quoted arguments may carry ": " too,
so the split only happens on ": " outside quotes, and a few error texts that
contain ": " themselves (``exec: no command``, ``EROFS: read-only file system``)
stay whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nerdlab.errors import TraceParseError

__all__ = [
    "Chain",
    "Layer",
    "go_quote",
    "go_unquote",
    "join_wrapped_line",
    "split_chain",
    "strip_log_prefix",
]


@dataclass(frozen=True, slots=True)
class Layer:
    """One wrapping layer, with the path or URI it names when it names one."""

    text: str
    verb: str | None = None
    argument: str | None = None
    stream: str | None = None


@dataclass(frozen=True, slots=True)
class Chain:
    """An error message split into layers, outermost first."""

    message: str
    layers: tuple[Layer, ...]
    prefix: str = ""
    summary: str | None = None
    others: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def texts(self) -> tuple[str, ...]:
        """The layer texts, outermost first."""
        return tuple(layer.text for layer in self.layers)


# Go strconv.Quote: a double-quoted string whose escapes are \a \b \f \n \r \t \v
# \\ \" \xNN \uNNNN \UNNNNNNNN (and \NNN octal, which strconv.Unquote also accepts).
_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_QUOTE_ESCAPES = {value: "\\" + key for key, value in _SIMPLE_ESCAPES.items()}
_HEX = "0123456789abcdefABCDEF"


def go_quote(text: str) -> str:
    """Quote ``text`` as Go's ``%q`` verb (``strconv.Quote``) does."""
    out = ['"']
    for char in text:
        code = ord(char)
        if char in _QUOTE_ESCAPES:
            out.append(_QUOTE_ESCAPES[char])
        elif 0xDC80 <= code <= 0xDCFF:
            # a byte that was not valid UTF-8, kept by the surrogateescape handler
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif char.isprintable():
            out.append(char)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def go_unquote(quoted: str, *, line: str | None = None, offset: int = 0) -> str:
    """Decode a Go ``%q`` string; raise ``TraceParseError`` pointing at a bad escape.

    ``line`` and ``offset`` place the caret when the string sits inside a longer line.
    """
    source = quoted if line is None else line

    def fail(message: str, index: int) -> TraceParseError:
        return TraceParseError(message, source, offset + index)

    if len(quoted) < 2 or quoted[0] != '"' or quoted[-1] != '"':
        raise fail("expected a Go double-quoted string", 0)
    data = bytearray()
    index = 1
    end = len(quoted) - 1
    while index < end:
        char = quoted[index]
        if char == '"':
            raise fail("unescaped double quote inside a quoted value", index)
        if char != "\\":
            data += char.encode("utf-8", "surrogateescape")
            index += 1
            continue
        if index + 1 >= end:
            raise fail("backslash at the end of a quoted value", index)
        kind = quoted[index + 1]
        if kind in _SIMPLE_ESCAPES:
            data += _SIMPLE_ESCAPES[kind].encode()
            index += 2
            continue
        width = {"x": 2, "u": 4, "U": 8}.get(kind)
        if width is not None:
            digits = quoted[index + 2 : index + 2 + width]
            if len(digits) != width or any(d not in _HEX for d in digits):
                raise fail(f"\\{kind} needs {width} hex digits", index)
            number = int(digits, 16)
            if kind == "x":
                data.append(number)
            elif number > 0x10FFFF or 0xD800 <= number <= 0xDFFF:
                raise fail(f"\\{kind}{digits} is not a valid code point", index)
            else:
                data += chr(number).encode()
            index += 2 + width
            continue
        octal = quoted[index + 1 : index + 4]
        if len(octal) == 3 and all(d in "01234567" for d in octal):
            number = int(octal, 8)
            if number > 0xFF:
                raise fail(f"\\{octal} is larger than a byte", index)
            data.append(number)
            index += 4
            continue
        raise fail(f"unknown escape \\{kind}", index)
    return data.decode("utf-8", "surrogateescape")


# Prefixes that say who logged a message and how loudly; none of them is a layer.
#   logrus text form:  "FATA[0000] "
#   logrus logfmt:     'time="..." level=error msg="' (the message is the msg value)
#   urfave/cli:        "ctr: "
#   yarn, cobra:       "error " before a capital, "Error: "
_JOURNAL = r"(?:[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ [^\s:\[]+(?:\[\d+\])?: )"
_LOGRUS_TEXT = r"(?:TRAC|DEBU|INFO|WARN|ERRO|FATA|PANI)\[\d+\] ?"
_CLI = r"(?:ctr|nerdctl|docker|crictl|containerd|runc|buildctl|limactl|lima): "
_PLAIN_LEVEL = r"(?:(?:[Ee]rror|ERROR|[Ff]atal|FATAL): |error (?=[A-Z]))"
_PREFIX = re.compile(rf"^(?:{_JOURNAL}?{_LOGRUS_TEXT}|{_CLI}|{_PLAIN_LEVEL})")
_LOGFMT_MSG = re.compile(r'(?:^|\s)msg=(?P<value>"(?:[^"\\]|\\.)*"|\S+)')
_LOGFMT_HEAD = re.compile(rf"^{_JOURNAL}?(?:time|level)=")

# nerdctl's summary for commands that take several containers: "%d errors:\n%w"
_SUMMARY = re.compile(r"^(?P<summary>\d+ errors?:)\n")

# Error texts that contain ": " themselves and so must not be split there:
# os/exec ("exec: no command", 'exec: "x": executable file not found in $PATH'),
# encoding/json, and errno names as Node.js prints them ("EROFS: read-only ...").
_WHOLE_HEAD = re.compile(r"^(?:exec|json|E[A-Z0-9]{2,})$")

# Go fmt's marker for a format verb without an operand: a URL-escaped "%2F" that went
# through a printf-style format string prints as "%!F(MISSING)".
_FMT_MISSING = re.compile(r"%!(?P<verb>[A-Za-z])\(MISSING\)")

# Error texts that name what they failed on, verb first (Go's os.PathError is
# "op path: err"; containerd/fifo says "error creating fifo %v"; containerd's cio
# says "failed to open %s fifo" and, shim side, "failed to open %s fifo %s").
_STREAM = r"(?P<stream>stdin|stdout|stderr)"
_ARGUMENT_FORMS = tuple(
    re.compile(pattern)
    for pattern in (
        r"^(?P<verb>error creating fifo) (?P<argument>\S.*)$",
        rf"^(?P<verb>failed to open {_STREAM} fifo)(?: (?P<argument>\S.*))?$",
        r'^(?P<verb>failed to read log config file) "(?P<argument>[^"]*)"$',
        r'^(?P<verb>failed to open) "(?P<argument>[^"]*)".*$',
        r'^(?P<verb>Could not write file) "(?P<argument>[^"]*)"$',
        r"^(?P<verb>stat|lstat|open|mkdir|mkfifo|readlink|remove|chdir|exec)"
        r" (?P<argument>\S.*)$",
    )
)

# A URI that runs to the end of a line, as left by a soft wrap: "stat binary:///usr/local"
_OPEN_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S*$")


def strip_log_prefix(text: str) -> tuple[str, str]:
    """Split ``text`` into its logging prefix and the error message proper."""
    if _LOGFMT_HEAD.match(text) and (msg := _LOGFMT_MSG.search(text)):
        value = msg["value"]
        if value.startswith('"'):
            try:
                value = go_unquote(value)
            except TraceParseError:
                value = value[1:-1]
        return text[: msg.start("value")], value
    prefix = _PREFIX.match(text)
    if prefix is None:
        return "", text
    return prefix.group(0), text[prefix.end() :]


def join_wrapped_line(message: str, following: str) -> str | None:
    """Return ``message`` joined with ``following`` if that line continues a URI.

    A pasted error whose URI was soft-wrapped ends in the middle of the URI; the next
    line then starts with the rest of it, with no indentation.
    """
    if not following or following[0].isspace() or not _OPEN_URI.search(message):
        return None
    if message.endswith(":"):
        return None
    return message + following


def _split_unquoted(message: str) -> list[str]:
    """Split on ": " (or ":" before a newline) outside double quotes and backticks."""
    parts: list[str] = []
    start = 0
    quote: str | None = None
    index = 0
    while index < len(message):
        char = message[index]
        if quote is not None:
            if char == "\\" and quote == '"':
                index += 2
                continue
            if char == quote:
                quote = None
        elif char in {'"', "`"}:
            quote = char
        elif char == ":" and message[index + 1 : index + 2] in {" ", "\n"}:
            parts.append(message[start:index])
            start = index + 2
            index += 2
            continue
        index += 1
    parts.append(message[start:])
    return [part.strip() for part in parts]


def _layers(message: str) -> list[Layer]:
    pieces = [piece for piece in _split_unquoted(message) if piece]
    merged: list[str] = []
    open_head = False
    for piece in pieces:
        if merged and (open_head or _WHOLE_HEAD.match(merged[-1])):
            # 'exec: "sh": executable file not found' is one error: a quoted name
            # after the head keeps the text after it in the same layer
            open_head = not open_head and piece.startswith('"') and piece.endswith('"')
            merged[-1] = f"{merged[-1]}: {piece}"
        else:
            open_head = False
            merged.append(piece)
    layers: list[Layer] = []
    for piece in merged:
        if len(piece) > 1 and piece[0] == piece[-1] == '"':
            # a whole layer quoted by its outer layer ("... : \"EROFS: ...\"")
            layers += _layers(piece[1:-1])
        else:
            layers.append(_layer(piece))
    return layers


def _layer(text: str) -> Layer:
    for form in _ARGUMENT_FORMS:
        match = form.match(text)
        if match is not None:
            groups = match.groupdict()
            return Layer(
                text=text,
                verb=match["verb"],
                argument=groups.get("argument"),
                stream=groups.get("stream"),
            )
    return Layer(text=text)


def split_chain(text: str) -> Chain:
    """Split one error message (with or without its log prefix) into layers."""
    prefix, message = strip_log_prefix(text.strip())
    notes: list[str] = []
    summary: str | None = None
    others: tuple[str, ...] = ()
    if head := _SUMMARY.match(message):
        summary = head["summary"]
        errors = [line for line in message[head.end() :].split("\n") if line.strip()]
        message, others = (errors[0] if errors else ""), tuple(errors[1:])
        notes.append(f"nerdctl summary {summary!r}: the first error is split below")
    elif "\n" in message:
        message = " ".join(part.strip() for part in message.split("\n"))
    if missing := sorted({m["verb"] for m in _FMT_MISSING.finditer(message)}):
        shown = ", ".join(f"%!{verb}(MISSING)" for verb in missing)
        notes.append(
            f"{shown}: Go fmt artefacts; a URL-escaped value such as %2F was "
            "passed through a printf-style format string"
        )
    return Chain(
        message=message,
        layers=tuple(_layers(message)),
        prefix=prefix,
        summary=summary,
        others=others,
        notes=tuple(notes),
    )
