"""The limits a server puts on requests, and the error a refused request gets.

Every refusal is a JSON object ``{"error": MESSAGE, "status": CODE}``, with ``"field"`` when one
field of the request is at fault (``"text"``, ``"text[3]"``, ``"k"``) and ``"limit"`` when a limit
refused it (``"max_body_bytes"``, ``"max_texts"``, ``"max_text_chars"``, ``"max_tokens"``): the
name of the limit and of the ``ffnlp serve`` option that sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from ffnlp.errors import ConfigError


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; each is an ``ffnlp serve`` option of the same name."""

    max_body_bytes: int = 1 << 20  # 1 MiB of request body
    max_texts: int = 1000  # texts (or words) in one request
    max_text_chars: int = 10_000  # characters in one text
    max_tokens: int = 200  # tokens one /generate may sample
    batch_wait_ms: float = 1.0  # how long a batch waits for more requests after its first
    max_batch_texts: int = 2048  # texts one batch gathers at most (a larger request goes alone)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            low = 0 if f.name == "batch_wait_ms" else 1
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
                raise ConfigError(f"--{option(f.name)} must be a number >= {low}; got {value!r}")
        if self.batch_wait_ms > 1000:
            raise ConfigError(
                f"--batch-wait-ms must be at most 1000 (a second); got {self.batch_wait_ms}"
            )


def option(name: str) -> str:
    """``max_body_bytes`` -> ``max-body-bytes`` (the command-line option)."""
    return name.replace("_", "-")


class ApiError(Exception):
    """A request refused: its HTTP status and the JSON body that says why."""

    def __init__(
        self, status: int, message: str, field: str | None = None, limit: str | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.limit = limit

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message, "status": self.status}
        if self.field is not None:
            out["field"] = self.field
        if self.limit is not None:
            out["limit"] = self.limit
        return out


def too_large(message: str, limit: str, field: str | None = None) -> ApiError:
    """413: over one of the limits (named, with the option that raises it)."""
    return ApiError(413, f"{message} (limit {limit}: ffnlp serve --{option(limit)})", field, limit)


def invalid(field: str, message: str) -> ApiError:
    """422: a field of the request that is missing, of the wrong type or out of range."""
    return ApiError(422, f"{field}: {message}", field)
