"""Seeded generator of realistic nginx access-log lines ("nginx_timed" format).

    $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
    "$http_referer" "$http_user_agent" $request_time $upstream_response_time

Used by ``plogd demo``, the tests and the benchmark.  Output depends only on
the arguments: the same seed gives byte-identical output, and a shorter run is
a prefix of a longer one with the same arguments.  No I/O except write_file().
"""

from __future__ import annotations

import bisect
import math
import random
import re
import time
from collections.abc import Iterator
from itertools import accumulate

__all__ = ["DEFAULT_START", "generate", "write_file"]

DEFAULT_START = 1795976400.0  # 2026-11-29 18:20:00 UTC

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
           "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_UAS = (  # (weight, user agent)
    (30, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
         "Gecko) Chrome/131.0.0.0 Safari/537.36"),
    (18, "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"),
    (14, "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.6778.81 Mobile Safari/537.36"),
    (10, "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, "
         "like Gecko) Version/18.1 Safari/605.1.15"),
    (8, "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (6, "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70"),
    (4, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (2, "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
    (2, "curl/8.5.0"),
    (2, "python-requests/2.32.3"),
    (1, "kube-probe/1.31"),
    (1, "-"),
)
_REFERERS = (  # (weight, referer)
    (45, "-"),
    (25, "https://shop.example.com/"),
    (10, "https://shop.example.com/search?q=shoes"),
    (8, "https://shop.example.com/cart"),
    (7, "https://www.google.com/"),
    (3, "https://www.bing.com/"),
    (2, "android-app://com.google.android.gm/"),
)
_WORDS = ("shoes", "red+dress", "laptop", "usb-c+cable", "coffee", "tent",
          "kids%20jacket", "phone+case", "lamp", "gift")
_SORTS = ("price", "-price", "new", "rating")



def _n(rng, hi):
    """Uniform int in 1..hi (cheaper than rng.randint)."""
    return int(rng.random() * hi) + 1


# Path table entry: (weight, class, make_path(rng) -> str, median body bytes,
# body sigma, median upstream seconds).  Class "s" = static (served by nginx,
# upstream "-"), "a" = proxied GET/HEAD, "w" = proxied POST/PUT/DELETE.
_GET_PATHS = (
    (10, "a", lambda r: "/", 18000, 0.3, 0.020),
    (16, "a", lambda r: "/api/items/%d" % _n(r, 50000), 1800, 0.8, 0.015),
    (10, "a", lambda r: "/api/items?page=%d&sort=%s" % (_n(r, 40), _SORTS[_n(r, 4) - 1]),
     9000, 0.6, 0.045),
    (6, "a", lambda r: "/search?q=%s" % _WORDS[_n(r, 10) - 1], 22000, 0.5, 0.120),
    (8, "a", lambda r: "/product/%d" % _n(r, 50000), 35000, 0.4, 0.030),
    (2, "a", lambda r: "/cart", 12000, 0.3, 0.025),
    (1, "a", lambda r: "/api/orders/%d" % _n(r, 900000), 2500, 0.5, 0.030),
    (2, "a", lambda r: "/healthz", 2, 0.01, 0.001),
    (12, "s", lambda r: "/static/js/app.%08x.js" % (0x5eed0000 + _n(r, 3)), 180000, 0.2, 0),
    (8, "s", lambda r: "/static/css/site.css", 42000, 0.05, 0),
    (20, "s", lambda r: "/images/products/%d.jpg" % _n(r, 50000), 60000, 0.9, 0),
    (3, "s", lambda r: "/favicon.ico", 4286, 0.01, 0),
    (1, "s", lambda r: "/robots.txt", 120, 0.01, 0),
)
_WRITE_PATHS = {  # method -> path table
    "POST": ((6, "w", lambda r: "/api/cart", 600, 0.5, 0.040),
             (2, "w", lambda r: "/login", 300, 0.3, 0.150),
             (1, "w", lambda r: "/api/orders", 900, 0.4, 0.250),
             (1, "w", lambda r: "/api/events", 30, 0.2, 0.005)),
    "PUT": ((1, "w", lambda r: "/api/cart/items/%d" % _n(r, 50000), 500, 0.4, 0.030),),
    "DELETE": ((1, "w", lambda r: "/api/cart/items/%d" % _n(r, 50000), 40, 0.2, 0.020),),
}
_METHODS = ((930, "GET"), (50, "POST"), (12, "HEAD"), (5, "PUT"), (3, "DELETE"))
_STATUSES = {  # class -> ((weight, status), ...)
    "s": ((800, 200), (160, 304), (35, 404), (5, 499)),
    "a": ((880, 200), (15, 301), (25, 302), (20, 304), (40, 404),
          (8, 499), (5, 500), (4, 502), (3, 503)),
    "w": ((900, 200), (40, 302), (30, 404), (5, 499), (12, 500), (7, 502), (6, 503)),
}
# Body size of every non-200 response (nginx default error pages; 0 for 304/499).
_ERROR_BODY = {301: 169, 302: 145, 304: 0, 404: 555, 499: 0, 500: 177, 502: 157, 503: 197}
_LIST_P = 0.008  # share of proxied requests logging several upstream times


def _table(pairs):
    """[(weight, item)] -> (cumulative weights, items) for _pick()."""
    pairs = list(pairs)
    return list(accumulate(w for w, _ in pairs)), [x for _, x in pairs]


def _pick(rng, table):
    cum, items = table
    return items[bisect.bisect(cum, rng.random() * cum[-1])]


def _parse_tz(tz: str) -> int:
    m = re.fullmatch(r"([+-])(\d\d)(\d\d)", tz)
    if not m or int(m[3]) > 59:
        raise ValueError(f"bad tz offset {tz!r}, expected like '+0000' or '-0530'")
    secs = int(m[2]) * 3600 + int(m[3]) * 60
    return -secs if m[1] == "-" else secs


def _clients(rng, n=320):
    """n (ip, remote_user, user_agent) tuples, ~10% IPv6, ~2% with basic auth."""
    uas = _table(_UAS)
    out = []
    for _ in range(n):
        if rng.random() < 0.10:
            ip = "2a0%d:%x:%x::%x" % (rng.randrange(1, 10), rng.randrange(0x100, 0xffff),
                                      rng.randrange(0xffff), rng.randrange(1, 0xffff))
        else:
            first = rng.choice((31, 37, 46, 62, 77, 81, 84, 91, 95, 109, 151, 176, 185, 188, 203,
                                213))
            ip = "%d.%d.%d.%d" % (first, rng.randrange(256), rng.randrange(256),
                                  rng.randrange(1, 255))
        user = rng.choice(("alice", "bob", "ops")) if rng.random() < 0.02 else "-"
        out.append((ip, user, _pick(rng, uas)))
    return out


def _iter_lines(count, seed, start, rate, tz) -> Iterator[str]:
    if rate <= 0:
        raise ValueError("rate must be > 0 lines per second")
    offset = _parse_tz(tz)
    rng = random.Random(seed)
    clients = _clients(rng)
    # Zipf-ish popularity: a few clients send most of the traffic.
    client_t = (list(accumulate(1.0 / (i + 1) for i in range(len(clients)))), clients)
    method_t = _table(_METHODS)
    paths_t = {m: _table((w, p) for w, *p in t)
               for m, t in (("GET", _GET_PATHS), *_WRITE_PATHS.items())}
    status_t = {c: _table(t) for c, t in _STATUSES.items()}
    ref_t = _table(_REFERERS)
    rand, gauss, expo, exp = rng.random, rng.gauss, rng.expovariate, math.exp
    pick = _pick
    t = float(start)
    sec = None
    stamp = ""
    for _ in range(count):
        t += expo(rate)
        if int(t) != sec:
            sec = int(t)
            g = time.gmtime(sec + offset)
            stamp = "%02d/%s/%d:%02d:%02d:%02d %s" % (
                g.tm_mday, _MONTHS[g.tm_mon - 1], g.tm_year, g.tm_hour, g.tm_min, g.tm_sec, tz)
        ip, user, ua = pick(rng, client_t)
        method = pick(rng, method_t)
        paths = paths_t["GET" if method == "HEAD" else method]
        cls, make, body_med, body_sig, up_med = pick(rng, paths)
        path = make(rng)
        status = pick(rng, status_t[cls])
        if status == 200:
            body = int(body_med * exp(body_sig * gauss()))
        else:
            body = _ERROR_BODY[status]
        if method == "HEAD":
            body = 0
        # Transfer time to the client: size / bandwidth (median ~4 MB/s).
        xfer = body / (4e6 * exp(0.8 * gauss()))
        if cls == "s" or status == 304:
            rt = xfer + 0.0003 * rand() if status != 499 else 0.5 * exp(gauss())
            up = "-"
        else:
            u = up_med * exp(0.9 * gauss())
            if status == 499:
                u = 1.0 + 4.0 * rand()
            elif status == 502:
                u = 0.001 * rand()
            rt = min(u + xfer + 0.0005 * rand(), 60.0)
            u = min(u, rt)
            if rand() < _LIST_P:
                first = u * 0.3 * rand()
                up = "%.3f%s%.3f" % (first, ", " if rand() < 0.7 else " : ", u - first)
            else:
                up = "%.3f" % u
        ref = pick(rng, ref_t)
        proto = "HTTP/2.0" if rand() < 0.25 else "HTTP/1.1"
        yield '%s - %s [%s] "%s %s %s" %d %d "%s" "%s" %.3f %s\n' % (
            ip, user, stamp, method, path, proto, status, body, ref, ua, rt, up)


def generate(count: int, *, seed: int = 1, start: float = DEFAULT_START,
             rate: float = 1000.0, tz: str = "+0000") -> Iterator[bytes]:
    """Yield ``count`` log lines (bytes, each ending in b"\\n").

    Timestamps start at ``start`` (UNIX epoch seconds), advance by exponential
    gaps with mean 1/``rate`` seconds (so never decrease), and are rendered in
    the UTC offset ``tz`` ("+0000", "-0500", "+0530", ...).
    """
    for line in _iter_lines(count, seed, start, rate, tz):
        yield line.encode("ascii")


def write_file(path, count: int, *, chunk: int = 20000, **kw) -> None:
    """Write ``count`` lines to ``path`` (same bytes as ``generate(count, **kw)``)."""
    lines = _iter_lines(count, kw.pop("seed", 1), kw.pop("start", DEFAULT_START),
                        kw.pop("rate", 1000.0), kw.pop("tz", "+0000"))
    if kw:
        raise TypeError(f"unexpected arguments: {sorted(kw)}")
    with open(path, "wb") as f:
        buf = []
        for line in lines:
            buf.append(line)
            if len(buf) >= chunk:
                f.write("".join(buf).encode("ascii"))
                buf.clear()
        f.write("".join(buf).encode("ascii"))
