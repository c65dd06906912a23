#!/usr/bin/env python3
"""Reference scorer for fmps export files, in the Python standard library alone.

    python3 fmps_score.py MODEL.fmps DATA [DATA ...] [--format=F] [--out=FILE]

Reads a file written by `fmps export` (docs/model-format.md), turns each line of the data files
into feature keys exactly as the fmps readers do (XXH3-64 of the token text, Criteo's integer
buckets, Avazu's hour and weekday), and writes one line per input line, in input order: the
probability, `%.9g`, or `nan` for a line that cannot be scored (malformed or empty: a message
naming FILE:LINE goes to stderr) or whose score is not finite. That is what `fmps predict
--model_dir=MODEL.fmps` writes, to 1e-6: line N of the output belongs to line N of the input (an
Avazu header line gets no output line). Plain and gzip files are read; zstd is not in the
standard library.

The model math is the plain pairwise form of each model (models/reference.cc), in double
precision: fm, fwfm, pruned_fwfm, dplr, rafm, ffm.
"""

import gzip
import json
import math
import re
import struct
import sys
import zlib

MASK64 = (1 << 64) - 1

# ---------------------------------------------------------------------------------------------
# XXH3-64 (xxHash 0.8), written from the algorithm's description: the key hash of every token.

_SECRET = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e")
P32_1, P32_2, P32_3 = 0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D
P64_1, P64_2, P64_3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
P64_4, P64_5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _r32(b, i):
    return struct.unpack_from("<I", b, i)[0]


def _r64(b, i):
    return struct.unpack_from("<Q", b, i)[0]


def _swap32(x):
    return int.from_bytes(x.to_bytes(4, "little"), "big")


def _swap64(x):
    return int.from_bytes(x.to_bytes(8, "little"), "big")


def _rotl64(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK64


def _fold64(a, b):
    p = a * b
    return (p & MASK64) ^ (p >> 64)


def _xxh64_avalanche(h):
    h ^= h >> 33
    h = (h * P64_2) & MASK64
    h ^= h >> 29
    h = (h * P64_3) & MASK64
    return h ^ (h >> 32)


def _avalanche(h):
    h ^= h >> 37
    h = (h * 0x165667919E3779F9) & MASK64
    return h ^ (h >> 32)


def _rrmxmx(h, length):
    h ^= _rotl64(h, 49) ^ _rotl64(h, 24)
    h = (h * 0x9FB21C651E98DF25) & MASK64
    h ^= (h >> 35) + length
    h = (h * 0x9FB21C651E98DF25) & MASK64
    return h ^ (h >> 28)


def _mix16(data, i, secret, s, seed):
    lo = _r64(data, i) ^ ((_r64(secret, s) + seed) & MASK64)
    hi = _r64(data, i + 8) ^ ((_r64(secret, s + 8) - seed) & MASK64)
    return _fold64(lo, hi)


def _long(data, secret):
    n = len(data)
    acc = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1]

    def stripe(at, s):
        for i in range(8):
            value = _r64(data, at + 8 * i)
            key = value ^ _r64(secret, s + 8 * i)
            acc[i ^ 1] = (acc[i ^ 1] + value) & MASK64
            acc[i] = (acc[i] + (key & 0xFFFFFFFF) * (key >> 32)) & MASK64

    stripes_per_block = (len(secret) - 64) // 8
    block = 64 * stripes_per_block
    blocks = (n - 1) // block
    for b in range(blocks):
        for s in range(stripes_per_block):
            stripe(b * block + 64 * s, 8 * s)
        for i in range(8):  # scramble
            a = acc[i]
            a ^= a >> 47
            a ^= _r64(secret, len(secret) - 64 + 8 * i)
            acc[i] = (a * P32_1) & MASK64
    for s in range(((n - 1) - block * blocks) // 64):
        stripe(blocks * block + 64 * s, 8 * s)
    stripe(n - 64, len(secret) - 64 - 7)
    result = (n * P64_1) & MASK64
    for i in range(4):
        result = (result + _fold64(acc[2 * i] ^ _r64(secret, 11 + 16 * i),
                                   acc[2 * i + 1] ^ _r64(secret, 11 + 16 * i + 8))) & MASK64
    return _avalanche(result)


def xxh3_64(data, seed=0):
    """XXH3_64bits_withSeed(data, len(data), seed)."""
    n = len(data)
    sec = _SECRET
    if n == 0:
        return _xxh64_avalanche(seed ^ _r64(sec, 56) ^ _r64(sec, 64))
    if n <= 3:
        combined = (data[0] << 16) | (data[n >> 1] << 24) | data[n - 1] | (n << 8)
        bitflip = ((_r32(sec, 0) ^ _r32(sec, 4)) + seed) & MASK64
        return _xxh64_avalanche(combined ^ bitflip)
    if n <= 8:
        seed ^= _swap32(seed & 0xFFFFFFFF) << 32
        bitflip = ((_r64(sec, 8) ^ _r64(sec, 16)) - seed) & MASK64
        value = (_r32(data, n - 4) + (_r32(data, 0) << 32)) & MASK64
        return _rrmxmx(value ^ bitflip, n)
    if n <= 16:
        lo = _r64(data, 0) ^ (((_r64(sec, 24) ^ _r64(sec, 32)) + seed) & MASK64)
        hi = _r64(data, n - 8) ^ (((_r64(sec, 40) ^ _r64(sec, 48)) - seed) & MASK64)
        return _avalanche((n + _swap64(lo) + hi + _fold64(lo, hi)) & MASK64)
    if n <= 128:
        acc = (n * P64_1) & MASK64
        pairs = [(0, n - 16, 0)]
        if n > 32:
            pairs.append((16, n - 32, 32))
        if n > 64:
            pairs.append((32, n - 48, 64))
        if n > 96:
            pairs.append((48, n - 64, 96))
        for a, b, s in pairs:
            acc += _mix16(data, a, sec, s, seed) + _mix16(data, b, sec, s + 16, seed)
        return _avalanche(acc & MASK64)
    if n <= 240:
        acc = (n * P64_1) & MASK64
        for i in range(8):
            acc += _mix16(data, 16 * i, sec, 16 * i, seed)
        acc = _avalanche(acc & MASK64)
        for i in range(8, n // 16):
            acc += _mix16(data, 16 * i, sec, 16 * (i - 8) + 3, seed)
        acc += _mix16(data, n - 16, sec, 136 - 17, seed)
        return _avalanche(acc & MASK64)
    if seed != 0:  # a secret derived from the seed
        custom = bytearray()
        for i in range(len(sec) // 16):
            custom += struct.pack("<QQ", (_r64(sec, 16 * i) + seed) & MASK64,
                                  (_r64(sec, 16 * i + 8) - seed) & MASK64)
        sec = bytes(custom)
    return _long(data, sec)


# ---------------------------------------------------------------------------------------------
# Keys: the field in the top 8 bits, a hash of the token below (ps/base/keys.h, data/line_parser.h).

TOKEN_MASK = (1 << 56) - 1


def mix64(x):
    x &= MASK64
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def make_key(field, token_hash):
    return (field << 56) | (token_hash & TOKEN_MASK)


def token_key(field, text, seed=0):
    return make_key(field, xxh3_64(text, seed))


def integer_key(field, x, seed=0):
    return make_key(field, mix64((x & MASK64) * 0x9E3779B97F4A7C15 + seed + 1))


# First integer of Criteo buckets 1..69 (bucket of x = floor(ln(x)^2) for x > 2, else x).
_CRITEO_BUCKET_STARTS = [
    3, 5, 6, 8, 10, 12, 15, 17, 21, 24, 28, 32, 37, 43, 49, 55, 62, 70, 79, 88, 98, 109, 122, 135,
    149, 164, 181, 199, 219, 240, 262, 287, 313, 341, 371, 404, 439, 476, 516, 559, 604, 653, 705,
    760, 820, 883, 950, 1021, 1097, 1178, 1264, 1355, 1452, 1554, 1663, 1779, 1901, 2030, 2168,
    2313, 2466, 2629, 2800, 2981, 3173, 3375, 3589, 3814, 4051]


def criteo_bucket(x):
    if x <= 2:
        return x
    if x < 4096:
        b = 0
        while b < len(_CRITEO_BUCKET_STARTS) and _CRITEO_BUCKET_STARTS[b] <= x:
            b += 1
        return b
    return int(math.floor(math.log(x) ** 2))


def day_of_week(year, month, day):
    """0 = Sunday .. 6 = Saturday (data/line_parser.cc DayOfWeek)."""
    y = year - (1 if month <= 2 else 0)
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    mp = (month + 9) % 12
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    return ((days % 7) + 7 + 4) % 7


# ---------------------------------------------------------------------------------------------
# Line parsers: the same lines accepted, the same keys made, as data/line_parser.cc.

_INT = re.compile(rb"-?[0-9]+\Z")
_FLOAT = re.compile(rb"[-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\Z")
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1


class BadLine(Exception):
    pass


def parse_int(s):
    if not _INT.match(s):
        return None
    v = int(s)
    return v if INT64_MIN <= v <= INT64_MAX else None


def parse_float(s):
    if s[:1] == b"+":
        s = s[1:]
    if not _FLOAT.match(s):
        raise BadLine("bad value %r" % s)
    v = struct.unpack("<f", struct.pack("<f", float(s)))[0]  # to float, as the C++ reads it
    if math.isinf(v) or math.isnan(v):
        raise BadLine("bad value %r" % s)
    return v


def parse_label(s, allow_minus_one):
    if s in (b"0", b"1"):
        return float(s)
    v = parse_float(s)
    if v == 1.0:
        return 1.0
    if v == 0.0 or (allow_minus_one and v == -1.0):
        return 0.0
    raise BadLine("bad label %r" % s)


def parse_criteo(line):
    cols = line.split(b"\t")
    label = parse_label(cols[0], False)
    if len(cols) != 40:
        raise BadLine("expected 40 tab-separated columns, got %d" % len(cols))
    entries = []
    for col in range(1, 40):
        text = cols[col]
        if not text:
            continue
        field = col - 1
        if col <= 13:
            x = parse_int(text)
            if x is None:
                raise BadLine("bad integer %r in column %d" % (text, col + 1))
            entries.append((field, integer_key(field, criteo_bucket(x)), 1.0))
        else:
            entries.append((field, token_key(field, text), 1.0))
    return label, entries


def parse_avazu(line):
    cols = line.split(b",")
    if len(cols) != 24:
        raise BadLine("expected 24 comma-separated columns, got %d" % len(cols))
    label = parse_label(cols[1], False)
    hour = cols[2]
    if len(hour) != 8 or not hour.isdigit():
        raise BadLine("hour must be YYMMDDHH")
    yy, mm, dd, hh = int(hour[0:2]), int(hour[2:4]), int(hour[4:6]), int(hour[6:8])
    if not (1 <= mm <= 12 and 1 <= dd <= 31 and hh <= 23):
        raise BadLine("hour must be YYMMDDHH")
    entries = [(0, integer_key(0, hh), 1.0),
               (1, integer_key(1, day_of_week(2000 + yy, mm, dd)), 1.0)]
    for field, text in enumerate(cols[3:], start=2):
        if text:
            entries.append((field, token_key(field, text), 1.0))
    return label, entries


def _tokens(line):
    return [t for t in re.split(rb"[ \t]+", line) if t]


def parse_libffm(line):
    tokens = _tokens(line)
    if not tokens:
        raise BadLine("empty line")
    label = parse_label(tokens[0], True)
    entries = []
    for token in tokens[1:]:
        c1 = token.find(b":")
        c2 = token.find(b":", c1 + 1) if c1 >= 0 else -1
        if c2 < 0 or c2 == c1 + 1 or c1 == 0:
            raise BadLine("expected field:feature:value, got %r" % token)
        field = parse_int(token[:c1])
        if field is None or field < 0:
            raise BadLine("bad field in %r" % token)
        if field >= 256:
            raise BadLine("field %d >= 256" % field)
        value = parse_float(token[c2 + 1:])
        entries.append((field, token_key(field, token[c1 + 1:c2]), value))
    return label, entries


def parse_libsvm(line):
    tokens = _tokens(line)
    if not tokens:
        raise BadLine("empty line")
    label = parse_label(tokens[0], True)
    entries = []
    for position, token in enumerate(tokens[1:]):
        colon = token.find(b":")
        if colon <= 0 or token.find(b":", colon + 1) >= 0:
            raise BadLine("expected id:value, got %r" % token)
        if position >= 256:
            raise BadLine("more than 256 pairs")
        value = parse_float(token[colon + 1:])
        entries.append((position, token_key(position, token[:colon]), value))
    return label, entries


PARSERS = {"criteo": parse_criteo, "avazu": parse_avazu, "libffm": parse_libffm,
           "libsvm": parse_libsvm, "libfm": parse_libsvm}


# ---------------------------------------------------------------------------------------------
# The export file (docs/model-format.md).

class ExportedModel:
    def __init__(self, path):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) < 36 or data[:8] != b"FMPSMODL":
            raise ValueError("%s: not an fmps export file" % path)
        (crc,) = struct.unpack_from("<I", data, len(data) - 4)
        if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc:
            raise ValueError("%s: CRC-32 mismatch (file damaged or truncated)" % path)
        version, header_size = struct.unpack_from("<II", data, 8)
        if version != 1:
            raise ValueError("%s: unsupported format version %d" % (path, version))
        at = 16
        self.header = json.loads(data[at:at + header_size].decode("utf-8"))
        at += header_size
        (n,) = struct.unpack_from("<Q", data, at)
        at += 8
        self.dense = list(struct.unpack_from("<%df" % n, data, at))
        at += 4 * n
        (rows,) = struct.unpack_from("<Q", data, at)
        at += 8
        self.rows = {}  # key -> (w, v)
        for _ in range(rows):
            key, w, _count, rank = struct.unpack_from("<QfIH", data, at)
            at += 18
            self.rows[key] = (w, struct.unpack_from("<%df" % rank, data, at))
            at += 4 * rank
        if at != len(data) - 4:
            raise ValueError("%s: %d unexpected bytes after the rows" % (path, len(data) - 4 - at))
        h = self.header
        self.model = h["model"]
        self.m = h["num_fields"]
        self.k = h["k"]
        self.rafm_ranks = h["rafm_ranks"]
        self.rho = h["dplr_rank"]
        self.format = h["keys"]["format"]
        self.seed = h["keys"]["seed"]
        self.field_matrix = self._field_matrix()

    def _field_matrix(self):
        m, d = self.m, self.dense
        if self.model not in ("fwfm", "pruned_fwfm", "dplr"):
            return None
        pairs = m * (m - 1) // 2
        r = [[0.0] * m for _ in range(m)]
        for f in range(m):
            for g in range(f + 1, m):
                idx = f * m - f * (f + 1) // 2 + (g - f - 1)
                if self.model == "fwfm":
                    v = d[1 + idx]
                elif self.model == "pruned_fwfm":
                    v = d[1 + idx] * d[1 + pairs + idx]
                else:
                    e = d[1 + self.rho * m:]
                    v = sum(e[q] * d[1 + q * m + f] * d[1 + q * m + g] for q in range(self.rho))
                r[f][g] = r[g][f] = v
        return r

    def logit(self, entries):
        """The model's logit of one row: [(field, key, value)], fields < num_fields."""
        z = self.dense[0]
        feats = []
        for field, key, x in entries:
            if field >= self.m:  # the localizer drops fields the model does not have
                continue
            w, v = self.rows.get(key, (0.0, ()))
            z += w * x
            feats.append((field, v, x))
        model, k = self.model, self.k
        ranks = self.rafm_ranks
        for a in range(len(feats)):
            fa, va, xa = feats[a]
            for b in range(a + 1, len(feats)):
                fb, vb, xb = feats[b]
                if model == "ffm":
                    n = min(len(va) - fb * k, len(vb) - fa * k, k)
                    inner = sum(va[fb * k + d] * vb[fa * k + d] for d in range(max(n, 0)))
                elif model == "rafm":
                    level = min(sum(1 for r in ranks if r <= len(va)),
                                sum(1 for r in ranks if r <= len(vb)))
                    if level == 0:
                        continue
                    inner = sum(va[d] * vb[d] for d in range(ranks[level - 1]))
                else:
                    inner = sum(va[d] * vb[d] for d in range(min(len(va), len(vb))))
                    if self.field_matrix is not None:
                        inner *= self.field_matrix[fa][fb]
                z += inner * xa * xb
        return z


def sigmoid(z):
    e = math.exp(-abs(z))
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


def open_data(path):
    if path == "-":
        return sys.stdin.buffer
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if head == b"\x28\xb5\x2f\xfd":
        raise ValueError("%s: zstd is not in the Python standard library; decompress it first" % path)
    return open(path, "rb")


def score(model, path, data_format, out):
    """Writes one line per line of path (nan for a bad one); returns the rows scored."""
    parse = PARSERS[data_format]
    scored = 0
    with open_data(path) as f:
        for number, line in enumerate(f, start=1):
            line = line.rstrip(b"\n")
            if line.endswith(b"\r"):
                line = line[:-1]
            if data_format == "avazu" and number == 1 and line.startswith(b"id,"):
                continue  # the header
            try:
                if not line:
                    raise BadLine("empty line")
                _, entries = parse(line)
            except BadLine as e:
                sys.stderr.write("%s:%d: %s (written as nan)\n" % (path, number, e))
                out.write("nan\n")
                continue
            z = model.logit(entries)
            out.write("%.9g\n" % sigmoid(z) if math.isfinite(z) else "nan\n")
            scored += 1
    return scored


def main(argv):
    args = [a for a in argv if not a.startswith("--")]
    flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
    if len(args) < 2 or any(f not in ("format", "out") for f in flags):
        sys.stderr.write(__doc__)
        return 2
    model = ExportedModel(args[0])
    data_format = flags.get("format", model.format)
    if data_format not in PARSERS:
        sys.stderr.write("unknown format %r\n" % data_format)
        return 2
    out = open(flags["out"], "w") if flags.get("out", "-") != "-" else sys.stdout
    try:
        for path in args[1:]:
            score(model, path, data_format, out)
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
