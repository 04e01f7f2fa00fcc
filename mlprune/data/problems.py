"""Where a reader sends a DataError: raised at once, or collected so that every problem gets listed.

Training wants the first error, raised (the default). `mlprune check-data` wants all of them:
it passes `Problems(collect=True)`, and a reader then skips the bad item and goes on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from mlprune.errors import DataError

P = ParamSpec("P")
T = TypeVar("T")


class Problems:
    """DataErrors met while reading: raised (collect=False) or recorded in `messages`."""

    def __init__(self, collect: bool = False) -> None:
        self.collect = collect
        self.messages: list[str] = []

    def attempt(self, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """`read(*args, **kwargs)`; when collecting, a DataError is recorded and gives None."""
        try:
            return read(*args, **kwargs)
        except DataError as error:
            if not self.collect:
                raise
            self.add(str(error))
            return None

    def report(self, message: str) -> None:
        """A problem found without a read to attempt: raised as a DataError, or recorded."""
        if not self.collect:
            raise DataError(message)
        self.add(message)

    def add(self, message: str) -> None:
        """Record a message once, in order of discovery."""
        if message not in self.messages:
            self.messages.append(message)
