"""The error vocabulary is stable: these codes are an interface."""

from __future__ import annotations

from pop3watch.errors import (
    ERROR_CODES,
    CheckTimeout,
    ConnectFailed,
    Disconnected,
    Phase,
    Pop3WatchError,
    StarttlsInjection,
)

PUBLISHED = {
    "config_missing": "Configuration information for this item is missing some required fields",
    "dns_failed": "Could not obtain an IP address for the remote device",
    "connect_failed": "Unable to connect to the remote device",
    "timeout": "The remote device timed out before sending a response",
    "disconnected": "Unexpected disconnection from the remote device",
    "protocol_violation": (
        "The response from the remote device does not adhere to protocol specification"
    ),
    "service_unavailable": None,
    "tls_unavailable": None,
    "tls_failed": None,
    "starttls_injection": None,
    "cert_invalid": None,
    "cert_expiring": None,
    "auth_unsupported": None,
    "insecure_auth_refused": None,
    "auth_failed": None,
    "mailbox_locked": None,
    "slow_response": None,
    "mailbox_threshold": None,
}


def test_every_published_code_has_a_class_and_its_message() -> None:
    for code, message in PUBLISHED.items():
        assert code in ERROR_CODES, code
        if message is not None:
            assert ERROR_CODES[code].default_message == message


def test_one_base_and_builtin_parents() -> None:
    assert all(issubclass(cls, Pop3WatchError) for cls in ERROR_CODES.values())
    assert issubclass(CheckTimeout, TimeoutError)
    assert issubclass(ConnectFailed, ConnectionError)
    assert issubclass(Disconnected, ConnectionError)


def test_message_says_the_phase_and_the_detail() -> None:
    err = CheckTimeout("after 10 s", phase=Phase.GREETING)
    assert (
        err.message
        == "The remote device timed out before sending a response (phase: greeting): after 10 s"
    )
    assert StarttlsInjection().phase is Phase.STARTTLS
