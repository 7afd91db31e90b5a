"""structlog set-up: one JSON object per line, with contextvars (event id, job id) merged in."""

from __future__ import annotations

import logging
import re
import sys

import structlog

# Keys whose values never reach a log line, whatever a caller passes: any key *containing* one of these
# (`webhook-signature`, `admin_token`, `cr_webhook_secrets`, `cr_api_key`...), also inside dict values
# such as a headers mapping.
_REDACT = ("secret", "token", "signature", "authorization", "password", "api_key", "cookie", "redis_url")


def _sensitive(key: object) -> bool:
    name = str(key).lower().replace("-", "_")
    return any(word in name for word in _REDACT)


def _scrub(value: object) -> object:
    if isinstance(value, dict):
        return {k: "[redacted]" if _sensitive(k) else _scrub(v) for k, v in value.items()}
    return value


def _redact(_: object, __: str, event_dict: dict) -> dict:
    for key in list(event_dict):
        if key == "event":
            continue
        event_dict[key] = "[redacted]" if _sensitive(key) else _scrub(event_dict[key])
    return event_dict


# aiohttp's "Error handling request" quotes the offending raw header line in its exception text
# (`Invalid header value char: b'webhook-signature: v1,...'`); cut the value of any sensitive header.
_HEADER_LINE = re.compile(r"(?i)\b((?:proxy-)?authorization|webhook-signature|cookie|x-api-key)(\s*:)[^\r\n]*")


def _redact_header_lines(_: object, __: str, event_dict: dict) -> dict:
    for key, value in event_dict.items():
        if isinstance(value, str) and ":" in value:
            event_dict[key] = _HEADER_LINE.sub(r"\1\2 [redacted]", value)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer = structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer()
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    # Route stdlib logging (aiohttp, arq) through the same renderer so every line is JSON.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_header_lines,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # One line per request halves throughput; request outcomes are in the metrics instead.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
