"""Where a fuzz case's decisions come from: one small interface over hypothesis, random and atheris.

Every mutator in fuzzkit asks a Chooser for integers and bytes, never a random module directly,
so that the same structure-aware generator runs under hypothesis (the tests: deterministic and
shrinking), under `random.Random(seed)` (the benchmark: fast, thousands of cases) and under
atheris (coverage-guided: the bytes libFuzzer mutates become the decisions).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")


class Chooser:
    """Decisions for one case. Subclasses give `integer` and `binary`; the rest is built on them."""

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high]."""
        raise NotImplementedError

    def binary(self, low: int, high: int) -> bytes:
        """Between low and high bytes."""
        raise NotImplementedError

    def pick(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def chance(self, percent: int) -> bool:
        return self.integer(0, 99) < percent

    def weighted(self, options: Sequence[tuple[int, T]]) -> T:
        """One of `options` ((weight, value) pairs) with probability proportional to its weight."""
        total = sum(weight for weight, _ in options)
        point = self.integer(0, total - 1)
        for weight, value in options:
            if point < weight:
                return value
            point -= weight
        raise AssertionError("unreachable")


class RandomChooser(Chooser):
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def binary(self, low: int, high: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(low, high))


class HypothesisChooser(Chooser):
    """Decisions drawn from hypothesis strategies: they shrink towards the first option and small sizes."""

    def __init__(self, draw: Callable[[Any], Any]) -> None:
        from hypothesis import strategies as st

        self._draw = draw
        self._st = st

    def integer(self, low: int, high: int) -> int:
        return self._draw(self._st.integers(low, high))

    def binary(self, low: int, high: int) -> bytes:
        return self._draw(self._st.binary(min_size=low, max_size=high))


class AtherisChooser(Chooser):
    """Decisions read from libFuzzer's input through atheris' FuzzedDataProvider (zeros once it runs out)."""

    def __init__(self, provider: Any) -> None:
        self._provider = provider

    def integer(self, low: int, high: int) -> int:
        return low if high <= low else self._provider.ConsumeIntInRange(low, high)

    def binary(self, low: int, high: int) -> bytes:
        data = self._provider.ConsumeBytes(self.integer(low, high))
        return data + bytes(low - len(data)) if len(data) < low else data
