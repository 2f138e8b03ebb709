"""Masking the secrets (the API key, the admin key, the base URL's credentials) in every text that leaves the server.

An upstream may echo a secret anywhere: in a request id header, a job's ``error.message``, ``metadata`` or
``suffix``, an event's message, a result file's header. A `Redactor`, built once from the secrets, finds in any text
every run of `MIN_RUN` or more consecutive characters of a secret and replaces it with `MASK`, also when the run is

- interrupted by whitespace (a newline, a space, a tab, or their JSON escapes ``\\n``, ``\\r``, ``\\t``);
- percent-encoded (``%73%6B``, either case), JSON ``\\u`` escaped, ``\\x`` escaped or HTML ``&#...;`` escaped, one
  character or all of them (once: a doubly encoded echo is not decoded twice);
- hex-encoded (the secret's UTF-8 bytes, lower or upper case): a run of ``2 * MIN_RUN`` hex digits;
- base64-encoded (standard or URL-safe alphabet, at any of the three byte alignments, so also inside a longer
  base64 text such as a ``Basic`` credential): a run of the base64 characters that ``MIN_RUN`` bytes determine.

Runs lying wholly inside a key's public prefix (``sk-``, ``sk-proj-``, ``sk-admin-``...) are not secret and stay,
so that "set OPENAI_ADMIN_KEY to an admin key (sk-admin-...)" is still readable. A secret shorter than `MIN_RUN` (a
base URL's user name) is masked where it occurs whole, if it has at least `MIN_SHORT_SECRET` characters.

Speed: a text is first reduced to a view without whitespace (and a decoded view when it holds escapes); a sample of
that view's 5-grams (one every 4 characters) is checked against the 5-grams of every form of the secrets in one set
operation, which no run of 8 can slip between. Only a text that passes that check is searched exactly (anchors of
each form, extended both ways) and mapped back to its own positions. A result of 250 checkpoints (about 40 KB of
JSON) is checked in a few milliseconds; see ``bench/masking.py``.

The exits call this module: `masked_exits` for what the server's handlers answer, raise and report as progress,
`install_log_masking` for the log. This module imports no ``mcp`` (the API layer uses `Redactor` too).
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

MASK = "***"
MIN_RUN = 8
"""Characters of a secret, in a row, that count as a leak."""
MIN_SHORT_SECRET = 4
"""A secret shorter than `MIN_RUN` is masked whole from this length; a shorter one cannot be told from text."""

_PUBLIC_PREFIX = re.compile(r"sk-(?:[A-Za-z]{2,12}-)?")
"""The documented, public start of an OpenAI key (``sk-proj-``, ``sk-svcacct-``, ``sk-admin-``)."""

_SAMPLE = 5
_STEP = 4
"""The plain and base64 forms are sampled as 5-grams every 4 characters: any run of 8 holds one sample."""
_HEX_SAMPLE = 8
_HEX_STEP = 9
"""The hex form (runs of 16) is sampled as 8-grams every 9 characters of the lower-cased view."""
_SAMPLER = re.compile(rf"(?s)(?=(.{{{_SAMPLE}}})).{{1,{_STEP}}}")
_HEX_SAMPLER = re.compile(rf"(?s)(?=(.{{{_HEX_SAMPLE}}})).{{1,{_HEX_STEP}}}")
"""A gram at every step, the last one too (it may have fewer than a step's characters after it)."""

_SKIPPED = re.compile(r"\s+|\\[nrt]")
"""What the raw view leaves out: whitespace and JSON's escaped whitespace."""
_ESCAPES = re.compile(
    r"%([0-9A-Fa-f]{2})|\\u([0-9A-Fa-f]{4})|\\x([0-9A-Fa-f]{2})|&#[xX]([0-9A-Fa-f]{1,6});|&#([0-9]{1,7});"
    r"|\\([nrt\"\\/])|\s+"
)
"""What the decoded view decodes (one character each) or, for whitespace, leaves out."""
_JSON_ESCAPED = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "/": "/"}


@dataclass(frozen=True)
class _Form:
    """One way a secret can be written: the text to look for, the shortest run that leaks, the anchor length, and
    whether it is compared with the lower-cased view (hex)."""

    image: str
    run: int
    anchor: int
    lower: bool = False
    exempt: int = 0
    """A run ending at or before this position of `image` is the public prefix: not a leak."""


class Redactor:
    """Masks the secrets it was built from in any text (`mask`), or in JSON-like values (`mask_value`)."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.secrets: tuple[str, ...] = tuple(unique)
        self._short = tuple(s for s in unique if MIN_SHORT_SECRET <= len(s) < MIN_RUN)
        self._forms: list[_Form] = []
        for secret in unique:
            if len(secret) >= MIN_RUN:
                self._forms.extend(_forms_of(secret))
        plain: set[str] = set()
        hexes: set[str] = set()
        for form in self._forms:
            if form.lower:
                hexes.update(form.image[i : i + _HEX_SAMPLE] for i in range(len(form.image) - _HEX_SAMPLE + 1))
            else:
                plain.update(form.image[i : i + _SAMPLE] for i in range(len(form.image) - _SAMPLE + 1))
        self._grams = frozenset(plain)
        self._hex_grams = frozenset(hexes)

    def __repr__(self) -> str:  # never the secrets
        return f"Redactor({len(self.secrets)} secret{'s' if len(self.secrets) != 1 else ''})"

    def __bool__(self) -> bool:
        return bool(self.secrets)

    # --- texts ------------------------------------------------------------------------------------------------------

    def suspect(self, text: str) -> bool:
        """Whether `text` may hold a secret in one of its forms: False is certain, True is checked by `mask`."""
        if not self.secrets or not text:
            return False
        if self._short and any(s in text for s in self._short):
            return True
        if not self._forms:
            return False
        for view in _views(text):
            if not self._grams.isdisjoint(_SAMPLER.findall(view)):
                return True
            if not self._hex_grams.isdisjoint(_HEX_SAMPLER.findall(_ascii_lower(view))):
                return True
        return False

    def mask(self, text: str) -> str:
        """`text` with every leaking run of a secret, in any of its forms, replaced by `MASK`."""
        if not self.suspect(text):
            return text
        spans: list[tuple[int, int]] = []
        for decode in (False, True):
            if decode and not _has_escapes(text):
                break
            view, starts, ends = _mapped_view(text, decode=decode)
            for begin, end in self._matches(view):
                spans.append((starts[begin], ends[end - 1]))
        for secret in self._short:
            at = text.find(secret)
            while at != -1:
                spans.append((at, at + len(secret)))
                at = text.find(secret, at + 1)
        return _replace(text, spans)

    def _matches(self, view: str) -> list[tuple[int, int]]:
        """The spans of `view` (begin, end) where a form of a secret runs for at least its leaking length."""
        found: list[tuple[int, int]] = []
        lowered: str | None = None
        for form in self._forms:
            if form.lower:
                lowered = _ascii_lower(view) if lowered is None else lowered
                haystack = lowered
            else:
                haystack = view
            found.extend(_runs(haystack, form))
        return found

    # --- values -----------------------------------------------------------------------------------------------------

    def mask_value(self, value: Any) -> Any:
        """A JSON-like value (dicts, lists, strings, numbers) with every string masked, keys too; the same object
        when nothing needed masking."""
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict | list):
            try:
                whole = json.dumps(value, ensure_ascii=False, default=str)
            except (TypeError, ValueError, RecursionError):
                whole = None
            if whole is not None and not self.suspect(whole):
                return value
            return self._walk(value)
        return value

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {self.mask(k) if isinstance(k, str) else k: self._walk(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._walk(v) for v in value]
        return value


def _forms_of(secret: str) -> list[_Form]:
    """The plain secret (and its UTF-8 bytes read as Latin-1, as a per-byte decoding of its escapes reads them), its
    hex and its base64 at each alignment in both alphabets."""
    prefix = _PUBLIC_PREFIX.match(secret)
    exempt = prefix.end() if prefix else 0
    raw = secret.encode("utf-8", "surrogatepass")
    forms = [_Form(secret, MIN_RUN, MIN_RUN // 2, exempt=exempt)]
    as_bytes = raw.decode("latin-1")
    if as_bytes != secret:
        forms.append(_Form(as_bytes, MIN_RUN, MIN_RUN // 2))
    forms.append(_Form(raw.hex(), 2 * MIN_RUN, MIN_RUN, lower=True))
    b64_run = _B64_RUN
    for align in range(3):
        encoded = base64.b64encode(b"\0" * align + raw).decode("ascii")
        first = -(-8 * align // 6)
        last = (8 * align + 8 * len(raw)) // 6
        image = encoded[first:last]
        if len(image) < b64_run:
            continue
        forms.append(_Form(image, b64_run, b64_run // 2))
        urlsafe = image.replace("+", "-").replace("/", "_")
        if urlsafe != image:
            forms.append(_Form(urlsafe, b64_run, b64_run // 2))
    return forms


def _base64_run(length: int) -> int:
    """The base64 characters that `length` bytes in a row determine whole, at the worst of the three alignments
    (10 for 8 bytes): any base64 text of such a run holds that many characters that depend on it alone."""
    return min((8 * align + 8 * length) // 6 - -(-8 * align // 6) for align in range(3))


_B64_RUN = _base64_run(MIN_RUN)


def _runs(haystack: str, form: _Form) -> Iterable[tuple[int, int]]:
    """Every maximal stretch of `haystack` that matches `form.image` for at least `form.run` characters.

    Any such stretch holds one of the image's blocks of `form.anchor` characters that start at a multiple of it
    (``run >= 2 * anchor - 1``); each occurrence of a block is extended both ways as far as it matches."""
    image, size = form.image, form.anchor
    seen: set[tuple[int, int]] = set()
    for start in range(0, len(image) - size + 1, size):
        block = image[start : start + size]
        at = haystack.find(block)
        while at != -1:
            left = 0
            while left < start and left < at and haystack[at - left - 1] == image[start - left - 1]:
                left += 1
            right = start + size
            end = at + size
            while right < len(image) and end < len(haystack) and haystack[end] == image[right]:
                right += 1
                end += 1
            begin = at - left
            if end - begin >= form.run and right > form.exempt and (begin, end) not in seen:
                seen.add((begin, end))
                yield begin, end
            at = haystack.find(block, at + 1)


_AN_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}|\\[ux\"\\/]|&#")


def _has_escapes(text: str) -> bool:
    """Whether `text` holds an escape the decoded view decodes (``10%`` or a JSON newline is none)."""
    return _AN_ESCAPE.search(text) is not None


def _views(text: str) -> Iterable[str]:
    """The raw view (no whitespace) and, when `text` holds escapes, the decoded view."""
    raw = "".join(text.split())
    if "\\" in raw:
        raw = _SKIPPED.sub("", raw)
    yield raw
    if _has_escapes(text):
        yield _ESCAPES.sub(_decoded_or_nothing, text)


def _decoded_or_nothing(match: re.Match[str]) -> str:
    char = _decoded(match)
    return "" if char is None or char.isspace() else char


def _decoded(match: re.Match[str]) -> str | None:
    """The character an escape stands for; None for whitespace (or an escape of no character)."""
    percent, unicode, hexed, entity_hex, entity_dec, json_char = match.groups()
    try:
        if percent or hexed:
            return chr(int(percent or hexed, 16))
        if unicode or entity_hex:
            return chr(int(unicode or entity_hex, 16))
        if entity_dec:
            return chr(int(entity_dec))
    except (ValueError, OverflowError):
        return None
    if json_char:
        return _JSON_ESCAPED[json_char]
    return None


def _mapped_view(text: str, *, decode: bool) -> tuple[str, list[int], list[int]]:
    """A view of `text` (raw or decoded) with, for each of its characters, where it starts and ends in `text`."""
    pattern = _ESCAPES if decode else _SKIPPED
    pieces: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    at = 0
    for match in pattern.finditer(text):
        if match.start() > at:
            pieces.append(text[at : match.start()])
            starts.extend(range(at, match.start()))
            ends.extend(range(at + 1, match.start() + 1))
        at = match.end()
        char = _decoded(match) if decode else None
        if char is not None and not char.isspace():
            pieces.append(char)
            starts.append(match.start())
            ends.append(match.end())
    if at < len(text):
        pieces.append(text[at:])
        starts.extend(range(at, len(text)))
        ends.extend(range(at + 1, len(text) + 1))
    return "".join(pieces), starts, ends


def _ascii_lower(text: str) -> str:
    """`text` lower-cased without changing its length (``str.lower`` may, for a few characters outside ASCII)."""
    lowered = text.lower()
    return lowered if len(lowered) == len(text) else text.translate(_ASCII_LOWER)


_ASCII_LOWER = {code: code + 32 for code in range(ord("A"), ord("Z") + 1)}


def _replace(text: str, spans: Sequence[tuple[int, int]]) -> str:
    """`text` with the spans (merged where they touch or overlap) replaced by `MASK`."""
    if not spans:
        return text
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    out: list[str] = []
    at = 0
    for begin, end in merged:
        out.append(text[at:begin])
        out.append(MASK)
        at = end
    out.append(text[at:])
    return "".join(out)


@functools.lru_cache(maxsize=64)
def redactor_for(secrets: tuple[str, ...]) -> Redactor:
    """The `Redactor` of `secrets`, built once per set of secrets (the API layer passes them as a tuple)."""
    return Redactor(secrets)


# --- the log --------------------------------------------------------------------------------------------------------


class MaskingFilter(logging.Filter):
    """On a log handler: a record's message (formatted with its arguments), its traceback and its stack are masked
    with every `Redactor` registered by `install_log_masking` before the handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactors = list(_log_redactors.values())
        if not redactors:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format: leave it to the handler, which reports it
            return True
        masked = message
        for redactor in redactors:
            masked = redactor.mask(masked)
        if masked != message:  # otherwise the record is left as it was logged (tests read its msg and args)
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        for name in ("exc_text", "stack_info"):
            value = getattr(record, name, None)
            if value:
                for redactor in redactors:
                    value = redactor.mask(value)
                setattr(record, name, value)
        return True


_log_redactors: dict[tuple[str, ...], Redactor] = {}
_LOG_REDACTORS_KEPT = 16
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def forget_log_masking() -> None:
    """Unregister every `Redactor` of `install_log_masking` (the filters stay, masking nothing until one is
    registered again): for a process that runs one configuration after another, as the test suite does, where one
    configuration's secrets must not mask the next one's log."""
    _log_redactors.clear()


def install_log_masking(redactor: Redactor) -> None:
    """Mask `redactor`'s secrets in every log line: register it, and put a `MaskingFilter` on every handler of the
    root logger and of any other logger that has handlers (uvicorn's, when it configured its own). Idempotent; call it
    again after adding a handler."""
    if redactor:
        _log_redactors.pop(redactor.secrets, None)
        _log_redactors[redactor.secrets] = redactor
        while len(_log_redactors) > _LOG_REDACTORS_KEPT:
            del _log_redactors[next(iter(_log_redactors))]
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [logging.getLogger(name) for name in UVICORN_LOGGERS]
    known = list(logging.Logger.manager.loggerDict.values())  # a copy: another thread may add a logger meanwhile
    loggers += [item for item in known if isinstance(item, logging.Logger)]
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
                handler.addFilter(MaskingFilter())
