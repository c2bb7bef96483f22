"""Sensitive-word moderation benchmark: one JSON object per figure and line.

20,000 deterministic words (half ASCII pseudo-words, half 2-4-character simplified Chinese) and
mixed English/Chinese text with frequent hits. Every baseline is measured in the same run on the
same data; ``ratio`` > 1 means we beat it.

- ``moderation.short_msg.20k``: median µs per ~120-byte message, every normalization on;
  baseline flashtext ``extract_keywords`` (target <= 15 µs, ratio >= 1.5);
- ``moderation.short_msg_vs_raw_ac.20k``: same figure; baseline raw pyahocorasick ``iter`` on
  the unnormalized unicode text (target ratio >= 2);
- ``moderation.bulk.20k``: MiB/s over 10 MiB of mixed text (checked in 64 KiB pieces), every
  normalization on; baseline raw pyahocorasick unicode ``iter`` (target >= 15 MiB/s);
- ``moderation.build.20k``: seconds to build the filter; baseline building a raw pyahocorasick
  automaton of the same words (target <= 1.0 s);
- ``moderation.bulk_fast.20k``: MiB/s as bulk with the hyperscan backend; baseline the default
  backend (target >= 50 MiB/s). Skipped when hyperscan is not installed.

Rounds of a figure and its baseline are interleaved and the medians reported, so the load of a
shared machine weighs on both alike.

Run: ``python benchmarks/moderation.py`` (about a minute).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import time
from collections.abc import Callable

import ahocorasick

from chatmgmt.model import MessageRole
from chatmgmt.moderation import Normalization, SensitiveWordFilter, has_speedups
from chatmgmt.moderation._normalize import _t2s_table

N_WORDS = 20_000
BULK_MIB = 10
PIECE = 64 * 1024

_ENGLISH_TEXT = (
    "the of and to in is you that it he was for on are as with his they at be this have from "
    "or one had by word but not what all were we when your can said there use an each which she "
    "do how their if will up other about out many then them these so some her would make like "
    "him into time has look two more write go see number no way could people my than first "
    "water been call who its now find long down day did get come made may part"
)
ENGLISH = _ENGLISH_TEXT.split()


def cjk_alphabet() -> list[str]:
    """2,500 simplified characters: CJK ideographs that the t2s table leaves alone."""
    traditional = _t2s_table()
    out = [chr(c) for c in range(0x4E00, 0x9FA6) if chr(c) not in traditional]
    return out[:2500]


def make_words(rng: random.Random, cjk: list[str]) -> list[str]:
    ascii_words: set[str] = set()
    while len(ascii_words) < N_WORDS // 2:
        n = rng.randint(4, 9)
        ascii_words.add("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n)))
    cjk_words: set[str] = set()
    while len(cjk_words) < N_WORDS - N_WORDS // 2:
        cjk_words.add("".join(rng.choice(cjk) for _ in range(rng.randint(2, 4))))
    return sorted(ascii_words) + sorted(cjk_words)


def make_message(rng: random.Random, words: list[str], cjk: list[str], size: int) -> str:
    parts: list[str] = []
    n = 0
    first = True
    while n < size:
        k = rng.random()
        if k < 0.08:
            w = rng.choice(words) + " "
        elif k < 0.55:
            w = rng.choice(ENGLISH)
            if first:
                w = w.capitalize()
            w += rng.choice((" ", " ", " ", ", ", ". "))
        else:
            w = "".join(rng.choice(cjk[:1500]) for _ in range(rng.randint(1, 4)))
            w += rng.choice(("", "", "，", "。"))
        first = w.endswith(". ")
        parts.append(w)
        n += len(w.encode())
    return "".join(parts)


def timeit(fn: Callable[[], object], rounds: int) -> list[float]:
    out = []
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def interleaved(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            out[name].extend(timeit(fn, 1))
    return out


def emit(name: str, value: float, unit: str, baseline: float, ratio: float) -> None:
    print(
        json.dumps(
            {
                "name": name,
                "value": round(value, 3),
                "unit": unit,
                "baseline": round(baseline, 3),
                "ratio": round(ratio, 2),
            }
        ),
        flush=True,
    )


def main() -> int:
    rng = random.Random(20_000)
    cjk = cjk_alphabet()
    words = make_words(rng, cjk)
    messages = [make_message(rng, words, cjk, 112) for _ in range(2000)]
    mean_bytes = statistics.mean(len(m.encode()) for m in messages)
    print(
        f"# {len(words)} words, {len(messages)} messages of {mean_bytes:.0f} bytes", file=sys.stderr
    )
    print(f"# C speedups: {'on' if has_speedups() else 'off (pure-Python path)'}", file=sys.stderr)
    norm = Normalization.all()
    customer = MessageRole.CUSTOMER

    # build
    def build() -> SensitiveWordFilter:
        return SensitiveWordFilter(customer=words, normalization=norm)

    first = timeit(build, 1)[0]
    build_s = statistics.median(timeit(build, 3))

    def build_raw() -> None:
        a = ahocorasick.Automaton()
        for i, w in enumerate(words):
            a.add_word(w, i)
        a.make_automaton()

    raw_build_s = statistics.median(timeit(build_raw, 3))
    print(f"# first build in the process (fold tables included): {first:.3f} s", file=sys.stderr)
    emit("moderation.build.20k", build_s, "s", raw_build_s, raw_build_s / build_s)

    f = build()
    hits = sum(len(f.check(m, customer).hits) for m in messages)
    print(f"# {hits / len(messages):.2f} hits per message", file=sys.stderr)

    # short messages
    def ours() -> None:
        check = f.check
        for m in messages:
            check(m, customer)

    from flashtext import KeywordProcessor

    kp = KeywordProcessor()
    for w in words:
        kp.add_keyword(w)

    def flash() -> None:
        extract = kp.extract_keywords
        for m in messages:
            extract(m, span_info=True)

    raw = ahocorasick.Automaton()
    for i, w in enumerate(words):
        raw.add_word(w, i)
    raw.make_automaton()

    def raw_ac() -> None:
        it = raw.iter
        for m in messages:
            list(it(m))

    per = 1e6 / len(messages)
    # rounds interleaved, so a change in the machine's load hits ours and the baselines alike
    times = interleaved({"ours": ours, "flash": flash, "raw": raw_ac}, 9)
    ours_us = statistics.median(times["ours"]) * per
    flash_us = statistics.median(times["flash"]) * per
    raw_us = statistics.median(times["raw"]) * per
    emit("moderation.short_msg.20k", ours_us, "us/msg", flash_us, flash_us / ours_us)
    emit("moderation.short_msg_vs_raw_ac.20k", ours_us, "us/msg", raw_us, raw_us / ours_us)

    # bulk
    pieces: list[str] = []
    total = 0
    while total < BULK_MIB * 2**20:
        piece = "\n".join(make_message(rng, words, cjk, 200) for _ in range(PIECE // 200))
        pieces.append(piece)
        total += len(piece.encode())
    mib = total / 2**20

    def bulk(flt: SensitiveWordFilter) -> Callable[[], None]:
        def run() -> None:
            for p in pieces:
                flt.check(p, customer)

        return run

    def raw_bulk() -> None:
        for p in pieces:
            for _ in raw.iter(p):
                pass

    times = interleaved({"ours": bulk(f), "raw": raw_bulk}, 3)
    bulk_speed = mib / statistics.median(times["ours"])
    raw_speed = mib / statistics.median(times["raw"])
    emit("moderation.bulk.20k", bulk_speed, "MiB/s", raw_speed, bulk_speed / raw_speed)

    try:
        fast = SensitiveWordFilter(customer=words, normalization=norm, backend="hyperscan")
    except Exception as exc:  # hyperscan missing
        print(f"# bulk_fast skipped: {exc}", file=sys.stderr)
        return 0
    times = interleaved({"fast": bulk(fast), "ours": bulk(f)}, 3)
    fast_speed = mib / statistics.median(times["fast"])
    default_speed = mib / statistics.median(times["ours"])
    emit("moderation.bulk_fast.20k", fast_speed, "MiB/s", default_speed, fast_speed / default_speed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
