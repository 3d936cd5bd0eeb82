"""Apache %{format}t times: a strftime format -> a regex for its text and the parts it holds
(year, month, ..., epoch, zone); the epoch seconds of a time put together from the parts
logged by one or several directives ("%{%Y-%m-%d}t %{%H:%M:%S}t %{%z}t").

Names (%a %A %b %B %p) and the layouts of %c %x %X %r are the C locale's unless the input
names a `time_locale`: Apache's own %t always writes English names, but a %{...}t goes through
the C library's strftime, which follows the LC_TIME of the httpd process; that is not C when
a module calls setlocale() (mod_php and others: "19/Mär/2019", "Sonntag"). With a time_locale
the names are that locale's, read from the system once (time_names), and only those: a line
with English names is then unmatched, as it would be with a wrong format.
A time without a zone (%z, or a %Z that names UTC or GMT) is in the local time of this machine,
as Apache writes it (plogd runs where the log is written). Any other %Z name is taken as the
local zone's.
"""
from __future__ import annotations

import calendar
import locale
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache, cache

from .fields import Derived, FieldType, utc_offset
from .logformat import FormatError

class LocaleError(FormatError):
    """A time_locale that this machine does not have; the message says how to get it."""


class TimeNames:
    """What strftime writes in one locale: the month and day names (bytes, as logged), the
    AM/PM strings and the layouts of the composite conversions."""

    def __init__(self, locale_name: str, months: list[bytes], short_months: list[bytes],
                 days: list[bytes], short_days: list[bytes], ampm: tuple[bytes, bytes],
                 layouts: dict[str, str]):
        self.locale = locale_name
        self.months, self.short_months = months, short_months    # January first
        self.days, self.short_days = days, short_days              # Monday first (ISO)
        self.ampm = ampm
        self.layouts = layouts          # 'c', 'x', 'X', 'r' -> a strftime format

    def conversion(self, code: str):
        """(regex, part, raw -> value) of %a %A %b %B %p in this locale."""
        if code == "p":
            return self._ampm()
        names, part = {"a": (self.short_days, "weekday"), "A": (self.days, "weekday"),
                       "b": (self.short_months, "month"), "B": (self.months, "month")}[code]
        index = {name: i for i, name in enumerate(names, 1)}
        if len(index) < len(names) or b"" in index:
            raise FormatError(f"%{code} cannot be read back in the locale {self.locale}: it "
                              f"writes {b'/'.join(names).decode(errors='replace')}")
        # the longest first, so that no name stops at another that begins it (Jun, Juni)
        alternatives = sorted(map(re.escape, index), key=len, reverse=True)
        return b"|".join(alternatives), part, index.__getitem__

    def _ampm(self):
        am, pm = self.ampm
        if self is C_NAMES:
            return rb"AM|PM|am|pm|", "ampm", lambda raw: raw.upper().decode()
        meaning = {am: "AM", pm: "PM"} if am != pm else {am: ""}
        alternatives = sorted(map(re.escape, meaning), key=len, reverse=True)
        return b"|".join(alternatives), "ampm", meaning.__getitem__   # '' in de_DE: no clue


_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December"]
_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
C_NAMES = TimeNames("C", [m.encode() for m in _MONTHS], [m[:3].encode() for m in _MONTHS],
                    [d.encode() for d in _DAYS], [d[:3].encode() for d in _DAYS],
                    (b"AM", b"PM"), {"c": "%a %b %e %H:%M:%S %Y", "x": "%m/%d/%y",
                                     "X": "%H:%M:%S", "r": "%I:%M:%S %p"})
_LAYOUTS = {"c": "D_T_FMT", "x": "D_FMT", "X": "T_FMT", "r": "T_FMT_AMPM"}
_setlocale_lock = threading.Lock()


@cache
def time_names(locale_name: str | None) -> TimeNames:
    """The names strftime writes in `locale_name` (None: the C locale's), as the bytes of
    that locale's character set. Read by switching this process's LC_TIME and LC_CTYPE to
    the locale for a moment (Python decodes what strftime writes with LC_CTYPE), then back;
    once per name (start-up), as strftime in a thread meanwhile would see them too.
    Raises LocaleError when the locale is not installed."""
    if locale_name is None:
        return C_NAMES
    if not locale_name.strip():
        raise LocaleError("found an empty locale name; expected one such as de_DE.UTF-8")
    with _setlocale_lock:
        saved = locale.setlocale(locale.LC_TIME), locale.setlocale(locale.LC_CTYPE)
        try:
            try:
                locale.setlocale(locale.LC_TIME, locale_name)
                locale.setlocale(locale.LC_CTYPE, locale_name)
            except locale.Error:
                raise LocaleError(_not_installed(locale_name)) from None
            charset = locale.nl_langinfo(locale.CODESET)

            def written(fmt: str, month: int = 1, weekday: int = 0, hour: int = 0) -> bytes:
                moment = (2001, month, 1, hour, 0, 0, weekday, 1, 0)
                return time.strftime(fmt, moment).encode(charset)
            months = [written("%B", m) for m in range(1, 13)]
            short_months = [written("%b", m) for m in range(1, 13)]
            days = [written("%A", weekday=d) for d in range(7)]          # 0: Monday
            short_days = [written("%a", weekday=d) for d in range(7)]
            ampm = (written("%p", hour=0), written("%p", hour=12))
            # an empty layout: glibc's strftime uses the C one
            layouts = {code: locale.nl_langinfo(getattr(locale, item)) or C_NAMES.layouts[code]
                       for code, item in _LAYOUTS.items()}
        finally:
            locale.setlocale(locale.LC_TIME, saved[0])
            locale.setlocale(locale.LC_CTYPE, saved[1])
    return TimeNames(locale_name, months, short_months, days, short_days, ampm, layouts)


def _not_installed(name: str) -> str:
    m = re.fullmatch(r"([A-Za-z]+_[A-Za-z]+)\.([\w-]+)(@\w+)?", name)
    example = f"localedef -i {m.group(1)}{m.group(3) or ''} -f {m.group(2)} {name}" if m else \
        "localedef -i de_DE -f UTF-8 de_DE.UTF-8"
    return (f"the locale {name!r} is not installed on this machine (`locale -a` lists the "
            f"installed ones; as root, `{example}` generates it, or on Debian add it to "
            f"/etc/locale.gen and run locale-gen)")


def _offset(raw: bytes) -> int:
    """'+0130', '-05:00' or 'Z' -> seconds east of UTC."""
    if raw == b"Z":
        return 0
    digits = raw[1:].replace(b":", b"")
    return utc_offset(raw[:1], int(digits[:2]), int(digits[2:]))


def _spaced_int(raw: bytes) -> int:
    return int(raw.strip())


# conversion -> (regex, the part it gives, raw -> value), or (regex, None, None): matched only;
# the names (%a %A %b %B %p) depend on the locale: TimeNames.conversion
_NAMED = frozenset("aAbBp")
_CONVERSIONS: dict[str, tuple[bytes, str | None, Callable[[bytes], object] | None]] = {
    "Y": (rb"\d{4}", "year", int),
    "C": (rb"\d\d", "century", int),
    "y": (rb"\d\d", "year2", int),
    "G": (rb"\d{4}", "iso_year", int),
    "m": (rb"\d\d?", "month", int),
    "d": (rb"\d\d?", "day", int),
    "e": (rb" ?\d\d?", "day", _spaced_int),
    "j": (rb"\d{1,3}", "yday", int),
    "V": (rb"\d\d?", "iso_week", int),
    "U": (rb"\d\d?", None, None),
    "W": (rb"\d\d?", None, None),
    "u": (rb"[1-7]", "weekday", int),
    "w": (rb"[0-6]", "weekday", lambda raw: int(raw) or 7),
    "H": (rb"\d\d?", "hour", int),
    "k": (rb" ?\d\d?", "hour", _spaced_int),
    "I": (rb"\d\d?", "hour12", int),
    "l": (rb" ?\d\d?", "hour12", _spaced_int),
    "M": (rb"\d\d?", "minute", int),
    "S": (rb"\d\d?", "second", int),
    "s": (rb"-?\d+", "epoch", int),
    "z": (rb"Z|[+-]\d\d:?\d\d", "offset", _offset),
    "Z": (rb"[A-Za-z]+", "zone", lambda raw: raw.decode().upper()),
    "f": (rb"\d{1,9}", None, None),   # Python's fractional seconds: a window needs none
    "n": (rb"\s*", None, None),      # strptime: any white space, or none
    "t": (rb"\s*", None, None),
}
# conversions that stand for several others (and %c %x %X %r: TimeNames.layouts)
_COMPOSITE = {"D": "%m/%d/%y", "F": "%Y-%m-%d", "T": "%H:%M:%S", "R": "%H:%M", "h": "%b"}
# Apache's own formats, each a whole %{...}t on its own
_APACHE = {"sec": (rb"\d+", "epoch"), "msec": (rb"\d+", "epoch_ms"), "usec": (rb"\d+", "epoch_us"),
           "msec_frac": (rb"\d{3}", None), "usec_frac": (rb"\d{6}", None)}


class TimeText:
    """One %{format}t directive: the regex of its text, the parts it gives, and a function
    raw text -> its parts as ((part, value), ...), hashable to be cached and combined."""

    def __init__(self, fmt: str, names: TimeNames = C_NAMES):
        self.names = names
        self.parts: set[str] = set()
        self._converters: dict[str, tuple[str, Callable]] = {}   # regex group -> part
        self.pattern, groups = self._compile(fmt)
        self._match = re.compile(rb"(?:%s)\Z" % groups, re.S).match
        self.parse = lru_cache(maxsize=4096)(self._parse)

    def _compile(self, fmt: str) -> tuple[bytes, bytes]:
        """(the pattern without groups, the pattern with a named group per part)"""
        if fmt in _APACHE:
            regex, part = _APACHE[fmt]
            return regex, self._group(part, regex, int) if part else regex
        plain, grouped = b"", b""
        for literal, code in _conversions(fmt, self.names):
            plain += re.escape(literal.encode())
            grouped += re.escape(literal.encode())
            if code is None:
                continue
            regex, part, convert = self.names.conversion(code) if code in _NAMED else \
                _CONVERSIONS[code]
            plain += b"(?:%s)" % regex
            # a directive with a part has a conversion
            grouped += self._group(part, regex, convert) if part and convert else \
                b"(?:%s)" % regex
        return plain, grouped

    def _group(self, part: str, regex: bytes, convert: Callable) -> bytes:
        if part in self.parts:                   # logged twice: the first one counts
            return b"(?:%s)" % regex
        self.parts.add(part)
        group = f"g{len(self._converters)}"
        self._converters[group] = (part, convert)
        return b"(?P<%s>%s)" % (group.encode(), regex)

    def _parse(self, raw: bytes) -> tuple:
        m = self._match(raw)
        if m is None:
            raise ValueError(raw)
        return tuple((part, convert(m.group(group)))
                     for group, (part, convert) in self._converters.items())

    def field_type(self) -> FieldType:
        shown = "time" if self.names is C_NAMES else f"time, {self.names.locale} names"
        return FieldType(shown, self.pattern, self.parse, False)


def _conversions(fmt: str, names: TimeNames = C_NAMES) -> list[tuple[str, str | None]]:
    """'%Y-%m-%dT%T' -> [('', 'Y'), ('-', 'm'), ('-', 'd'), ('T', 'H'), (':', 'M'), ...]
    with composite conversions expanded (%c %x %X %r as in the locale of `names`);
    FormatError for anything else after a '%'."""
    pieces, literal, i = [], "", 0
    while i < len(fmt):
        char = fmt[i]
        if char != "%":
            literal += char
            i += 1
            continue
        code = fmt[i + 1:i + 2]
        if code == "%":
            literal += "%"
        elif code in _COMPOSITE or code in names.layouts:
            layout = _COMPOSITE.get(code) or names.layouts[code]
            try:
                expanded = _conversions(layout, names)
            except FormatError as e:
                raise FormatError(f"%{code} is {layout!r} in the locale {names.locale}: "
                                  f"{e}") from None
            if len(expanded) == 1:       # a layout of plain text
                literal += expanded[0][0]
            else:
                pieces.append((literal + expanded[0][0], expanded[0][1]))
                pieces += expanded[1:-1]
                literal = expanded[-1][0]
        elif code in _CONVERSIONS or code in _NAMED:
            pieces.append((literal, code))
            literal = ""
        else:
            shown = f"%{code}" if code else "a lone %"
            raise FormatError(f"{shown!r} is not a time conversion this parser knows "
                              f"(in the time format {fmt!r})")
        i += 2
    return pieces + [(literal, None)]


# -- putting a time together --------------------------------------------------------------

def epoch(parts: dict, zone: tzinfo | None = None) -> int | None:
    """Epoch seconds from the parts, or None when they do not make a date and a time;
    ValueError for a date that does not exist. A time without an offset is in `zone`
    (None: this machine's local time)."""
    if "epoch" in parts:
        return parts["epoch"]
    if "epoch_ms" in parts:
        return parts["epoch_ms"] // 1000
    if "epoch_us" in parts:
        return parts["epoch_us"] // 1_000_000
    day, hour = _date(parts), _hour(parts)
    if day is None or hour is None or "minute" not in parts:
        return None
    moment = datetime(day.year, day.month, day.day, hour, parts["minute"], parts.get("second", 0))
    if "offset" in parts:
        return calendar.timegm(moment.timetuple()) - parts["offset"]
    if parts.get("zone") in ("UTC", "GMT", "Z"):
        return calendar.timegm(moment.timetuple())
    if zone is not None:
        return int(moment.replace(tzinfo=zone).timestamp())
    return int(time.mktime((*moment.timetuple()[:6], 0, 0, -1)))   # local time


def _date(parts: dict) -> date | None:
    year = parts.get("year")
    if year is None and "year2" in parts:
        year2 = parts["year2"]   # POSIX: 69-99 are 1969-1999, 00-68 are 2000-2068
        year = parts["century"] * 100 + year2 if "century" in parts else \
            year2 + (1900 if year2 >= 69 else 2000)
    if year is not None and "month" in parts and "day" in parts:
        return date(year, parts["month"], parts["day"])
    if year is not None and "yday" in parts:
        day = date(year, 1, 1) + timedelta(days=parts["yday"] - 1)
        if day.year != year:         # day 366 of a common year: no day, not 1 January
            raise ValueError(f"day {parts['yday']} of {year}")
        return day
    if {"iso_year", "iso_week", "weekday"} <= parts.keys():
        return date.fromisocalendar(parts["iso_year"], parts["iso_week"], parts["weekday"])
    return None


def _hour(parts: dict) -> int | None:
    if "hour" in parts:
        return parts["hour"]
    if "hour12" in parts and parts.get("ampm"):
        return parts["hour12"] % 12 + (12 if parts["ampm"] == "PM" else 0)
    return None


# a valid value for every part: epoch() of these tells whether a set of parts is complete
_SAMPLE = {"year": 2000, "century": 20, "year2": 0, "iso_year": 2000, "month": 1, "day": 1,
           "yday": 1, "iso_week": 1, "weekday": 1, "hour": 0, "hour12": 12, "ampm": "AM",
           "minute": 0, "second": 0, "epoch": 0, "epoch_ms": 0, "epoch_us": 0, "offset": 0,
           "zone": "UTC"}


def is_complete(parts: set[str]) -> bool:
    """Whether times with these parts give a date and a time of day."""
    return epoch({p: _SAMPLE[p] for p in parts}) is not None


def combiner() -> Callable[..., int | None]:
    """A function (parts of each directive of one clock, ...) -> epoch seconds, or None when
    one of them was '-' (a condition did not hold). Cached: one second's lines repeat."""
    @lru_cache(maxsize=4096)
    def combine(*logged: tuple | None) -> int | None:
        if None in logged:
            return None
        return epoch(dict(pair for parts in logged for pair in parts or ()))
    return combine


# -- time_format: the time of a regex (or JSON) input ---------------------------------------

# named layouts; the others are strftime layouts
NAMED_LAYOUTS = {"clf": "%d/%b/%Y:%H:%M:%S %z"}
_ISO8601 = (rb"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?"
            rb"(?:Z|[+-]\d\d(?::?\d\d)?)?")
_EPOCH = rb"-?\d+(?:\.\d+)?"


def _whole_seconds(raw: bytes, per_second: int) -> int:
    """'1700000000.25' (per_second 1) or '1700000000250' (1000) -> 1700000000."""
    whole = raw.split(b".")[0]
    return int(whole) // per_second if raw[:1] != b"-" or whole == raw else \
        (int(whole) - 1) // per_second


class TimeLayout:
    """A `time_format:`: a strftime layout (month and day names in `names`' locale, %f for
    fractional seconds, %z for an offset) or a named one (iso8601, epoch, epoch_ms, clf).
    `zone` is the zone of times that carry no offset (None: this machine's local time).
    epoch(raw) -> epoch seconds, or ValueError; mismatch(raw) says where a text stops
    fitting."""

    def __init__(self, layout: str, names: TimeNames = C_NAMES, zone: tzinfo | None = None):
        self.layout, self.zone = layout, zone
        self._epoch: Callable[[bytes], int | None]
        if layout in ("epoch", "epoch_ms"):
            self._text, self.pattern = None, _EPOCH
            per_second = 1 if layout == "epoch" else 1000
            self._epoch = lambda raw: _whole_seconds(raw, per_second)
        elif layout == "iso8601":
            self._text, self.pattern = None, _ISO8601
            self._epoch = self._iso
        else:
            text = self._text = TimeText(NAMED_LAYOUTS.get(layout, layout), names)
            if not is_complete(text.parts):
                raise FormatError(f"the time format {layout!r} gives no full date and time "
                                  f"of day (it needs a year, a month and a day, or an epoch, "
                                  f"and the hours and minutes)")
            self.pattern = text.pattern
            self._epoch = lambda raw: epoch(dict(text.parse(raw)), zone)
        self._whole = re.compile(rb"(?:%s)\Z" % self.pattern, re.S).match
        self.epoch = lru_cache(maxsize=4096)(self._checked)

    def _checked(self, raw: bytes) -> int | None:
        if self._whole(raw) is None:
            raise ValueError(raw)
        return self._epoch(raw)

    def _iso(self, raw: bytes) -> int:
        moment = datetime.fromisoformat(raw.decode().replace(",", "."))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone) if self.zone is not None else \
                moment.astimezone()      # naive: local time
        return int(moment.timestamp() // 1)

    def field_type(self) -> FieldType:
        """The time as a field: its text, checked to be a time of this layout."""
        def checked_text(raw: bytes) -> str:
            self.epoch(raw)
            return raw.decode()
        return FieldType(f"time, {self.layout}", self.pattern, checked_text, False)

    def timestamp(self, field: str) -> Derived:
        """`timestamp` from the time field (its text, as field_type gives it)."""
        return Derived((field,), lambda text: None if text is None else
                       self.epoch(text.encode()), "epoch seconds")

    def mismatch(self, raw: bytes) -> str | None:
        """None when `raw` fits; else what it stops fitting at, e.g. "at column 4 of
        '2024/01/02 10:00': expected '-' then %m"."""
        try:
            self.epoch(raw)
            return None
        except (ValueError, OverflowError):
            pass
        shown = raw.decode(errors="replace")
        if self._text is None:
            return f"{shown!r} is not a time in the layout {self.layout}"
        pieces = _conversions(NAMED_LAYOUTS.get(self.layout, self.layout), self._text.names)
        fitted = b""
        for literal, code in pieces:
            step = re.escape(literal.encode())
            if code is not None:
                step += b"(?:%s)" % (self._text.names.conversion(code)[0] if code in _NAMED
                                     else _CONVERSIONS[code][0])
            m = re.match(fitted + step, raw, re.S)
            if m is None:
                fits = re.match(fitted, raw, re.S)
                assert fits is not None         # it fitted at the step before
                column = len(fits.group()) + 1
                wanted = (f"{literal!r} then " if literal else "") + (f"%{code}" if code
                                                                      else "the end")
                return f"at column {column} of {shown!r}: expected {wanted}"
            fitted += step
        return f"{shown!r} fits the layout but is no date that exists"


class AnyOfLayouts(TimeLayout):
    """Several layouts for one time field (a server that changed how it writes it): the
    first that fits a text gives its time."""

    def __init__(self, layouts: tuple[str, ...], names: TimeNames = C_NAMES,
                 zone: tzinfo | None = None):
        self.alternatives = [TimeLayout(layout, names, zone) for layout in layouts]
        self.layout, self.zone = " or ".join(layouts), zone
        self.pattern = b"|".join(b"(?:%s)" % a.pattern for a in self.alternatives)
        self.epoch = lru_cache(maxsize=4096)(self._first)

    def _first(self, raw: bytes) -> int | None:
        for layout in self.alternatives:
            try:
                return layout.epoch(raw)
            except (ValueError, OverflowError):
                continue
        raise ValueError(raw)

    def mismatch(self, raw: bytes) -> str | None:
        try:
            self.epoch(raw)
            return None
        except ValueError:
            return f"{raw.decode(errors='replace')!r} fits none of {self.layout}"


def system_zone_name() -> str:
    """The name of this machine's zone (TZ, else /etc/localtime's target), for people."""
    name = os.environ.get("TZ", "").lstrip(":")
    if not name:
        try:
            target = os.readlink("/etc/localtime")
            name = target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else target
        except OSError:
            name = "/".join(dict.fromkeys(time.tzname))
    return name or "UTC"
