"""Seeded draws shared by the generator's modules: streams, ids, unique values, JSON.

Every random choice in the demo goes through a `random.Random` built here from the seed,
never through the global `random` state, so the same seed always gives the same bytes.
The demo is synthetic data, not security: `random.Random` is wanted for its reproducible
streams, hence the `noqa: S311` where one is created.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from itertools import accumulate

# Built once: json.dumps with non-default options builds a new encoder on every call.
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
OPENID_ALPHABET = B62 + "-_"


def person_rng(seed: int, index: int) -> random.Random:
    """One independent stream per person: adding customers never changes the earlier ones."""
    return random.Random(f"oneloop-demo:{seed}:{index}")  # noqa: S311 - synthetic data


def shared_rng(seed: int, purpose: str) -> random.Random:
    """A stream for things drawn once for the whole data set (companies, costs...)."""
    return random.Random(f"oneloop-demo:{seed}:{purpose}")  # noqa: S311 - synthetic data


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID from the seeded stream, formatted without the `uuid` module's cost."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def between(rng: random.Random, low: int, high: int) -> int:
    """`rng.randint(low, high)` at a fraction of the cost, for the millions of durations the
    generator draws (not for identifiers: `random()` has only 53 bits)."""
    return low + int(rng.random() * (high - low + 1))


def token(rng: random.Random, n: int, alphabet: str = B62) -> str:
    return "".join(rng.choices(alphabet, k=n))


class Registry:
    """Values that must be unique across the data set (phones, e-mails, ids).

    Only membership is ever asked, never iteration, so a set's hash order cannot leak into
    the output.
    """

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __contains__(self, value: str) -> bool:
        return value in self._used

    def claim(self, draw: Callable[[], str]) -> str:
        """Call `draw()` until it yields an unused value, then keep it."""
        for _ in range(1000):
            value = draw()
            if value not in self._used:
                self._used.add(value)
                return value
        raise RuntimeError("ran out of unique values; widen the generator's range")


def weighted(items: tuple[tuple[str, float], ...]) -> tuple[tuple[str, ...], list[float]]:
    """Values and cumulative weights, for `rng.choices(values, cum_weights=...)`."""
    return tuple(v for v, _ in items), list(accumulate(w for _, w in items))
