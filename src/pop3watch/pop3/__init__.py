"""Sans-IO POP3 client core: events, states, bounded reader, commands, SASL, APOP.

Imports no asyncio and no sockets (h11's model). The only thing of ours it imports is
``pop3watch.errors``, the leaf module holding the product's one error vocabulary.
"""

from pop3watch.pop3.apop import apop_digest, find_timestamp
from pop3watch.pop3.capabilities import Capabilities, decimal_seconds
from pop3watch.pop3.commands import (
    Apop,
    Auth,
    Capa,
    Command,
    Noop,
    Pass,
    Quit,
    SaslCancel,
    SaslResponse,
    Stat,
    Stls,
    User,
)
from pop3watch.pop3.connection import Pop3Connection
from pop3watch.pop3.events import (
    NEED_DATA,
    Challenge,
    ConnectionClosed,
    Err,
    Event,
    Greeting,
    MultiLine,
    NeedData,
    Ok,
    code_is,
)
from pop3watch.pop3.reader import Limits
from pop3watch.pop3.sasl import (
    PASSWORD_MECHANISMS,
    TOKEN_MECHANISMS,
    SaslAbort,
    SaslMechanism,
    SaslUnusable,
    SaslViolation,
    Scram,
    build_mechanism,
    preferred_mechanisms,
)
from pop3watch.pop3.saslprep import changes_under_saslprep
from pop3watch.pop3.states import State

__all__ = [
    "NEED_DATA",
    "PASSWORD_MECHANISMS",
    "TOKEN_MECHANISMS",
    "Apop",
    "Auth",
    "Capa",
    "Capabilities",
    "Challenge",
    "Command",
    "ConnectionClosed",
    "Err",
    "Event",
    "Greeting",
    "Limits",
    "MultiLine",
    "NeedData",
    "Noop",
    "Ok",
    "Pass",
    "Pop3Connection",
    "Quit",
    "SaslAbort",
    "SaslCancel",
    "SaslMechanism",
    "SaslResponse",
    "SaslUnusable",
    "SaslViolation",
    "Scram",
    "Stat",
    "State",
    "Stls",
    "User",
    "apop_digest",
    "build_mechanism",
    "changes_under_saslprep",
    "code_is",
    "decimal_seconds",
    "find_timestamp",
    "preferred_mechanisms",
]
