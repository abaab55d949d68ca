"""The exception hierarchy: everything raised on purpose derives from LocateError."""

from __future__ import annotations

from collections.abc import Iterable

from asip_locate._model import Answer, Status


class LocateError(Exception):
    """Base class of every error asip_locate raises on purpose."""


class InvalidUriError(LocateError, ValueError):
    """The input is not a SIP/SIPS URI (or Via value) that can be located."""

    def __init__(self, text: str, reason: str) -> None:
        self.text = text
        self.reason = reason
        super().__init__(f"invalid input {text!r}: {reason}")


class InvalidViaError(InvalidUriError):
    """The input is not a valid Via header value (RFC 3261 §20.42)."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(text, reason)
        self.args = (f"invalid Via {text!r}: {reason}",)


# Most informative first (hickory's most_specific): an answer beats a failure.
_SPECIFICITY = (
    Status.NXDOMAIN,
    Status.NODATA,
    Status.NOERROR,
    Status.SERVFAIL,
    Status.REFUSED,
    Status.ERROR,
    Status.UNREACHABLE,
    Status.TIMEOUT,
)


class NoTargetsError(LocateError):
    """The procedure ended without a single target.

    ``attempts`` holds every DNS answer the locate saw, in the order they arrived.
    """

    def __init__(
        self, uri: str, attempts: Iterable[Answer] = (), reason: str | None = None
    ) -> None:
        self.uri = uri
        self.attempts = tuple(attempts)
        described = self._describe(self.attempts) if self.attempts else ""
        self.reason = "; ".join(filter(None, (reason, described))) or "nothing to look up"
        super().__init__(f"no targets for {uri}: {self.reason}")

    @staticmethod
    def _describe(attempts: tuple[Answer, ...]) -> str:
        ranked = sorted(attempts, key=lambda a: _SPECIFICITY.index(a.status))
        shown = "; ".join(str(a) for a in ranked[:4])
        more = len(ranked) - 4
        return shown + (f"; and {more} more" if more > 0 else "")


class UnsupportedTransportError(NoTargetsError):
    """The URI demands a transport the caller does not support (or SIPS forbids).

    Also a NoTargetsError: nothing conformant is left to try (RFC 3263 §4.1).
    """

    def __init__(self, uri: str, reason: str) -> None:
        super().__init__(uri, (), reason)


class LocateTimeoutError(LocateError, TimeoutError):
    """The overall deadline passed before the next target was known."""

    def __init__(self, uri: str, deadline: float, attempts: Iterable[Answer]) -> None:
        self.uri = uri
        self.deadline = deadline
        self.attempts = tuple(attempts)
        super().__init__(
            f"locating {uri} took longer than {deadline:g}s "
            f"({len(self.attempts)} answer(s) received)"
        )
