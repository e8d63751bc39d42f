"""What every client context of the check accepts, whatever Python runs it.

Job: one place for the rules the check's contexts share (the full and the unverified
ones in ``tls``, and the one trusting remembered chains in ``verified_chains``): TLS 1.2
or later, no renegotiation, and the same certificate verification flags (which the
unverified context, verifying nothing, does not use).

Why the flags are set, not inherited: ``ssl.create_default_context`` changed them in
Python 3.13 (``VERIFY_X509_STRICT`` and ``VERIFY_X509_PARTIAL_CHAIN`` became defaults),
so the same certificate would be Up on Python 3.11 and ``cert_invalid`` on 3.13 (seen:
"Missing Authority Key Identifier" for a leaf every mail client accepts). A monitor must
give one verdict for one server. Chosen:

- *not strict*: OpenSSL's strict mode refuses certificates for how they are encoded
  (no Authority Key Identifier, a CA whose basic constraints are not marked critical),
  which private CAs of mail servers often are, and which Thunderbird, Outlook, Go's
  verifier and Python before 3.13 all accept; such a check would be a false alarm. The
  chain's signatures, dates, host name and key usage are checked all the same.
- *partial chains*: a certificate in ``ca_file`` (or the system store) is a trust anchor
  even when it is not self-signed, so an admin may trust the issuing intermediate of an
  internal CA without its root, as Go's verifier (blackbox_exporter) and Python 3.13 do.
"""

from __future__ import annotations

import ssl

__all__ = ["apply_check_policy"]


def apply_check_policy(context: ssl.SSLContext) -> ssl.SSLContext:
    """Give ``context`` the check's rules (see the module docstring); returns it."""
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The chain is checked once, after the handshake; a TLS 1.2 renegotiation could bring
    # another one unseen.
    context.options |= ssl.OP_NO_RENEGOTIATION
    flags = context.verify_flags & ~ssl.VERIFY_X509_STRICT
    context.verify_flags = flags | ssl.VERIFY_X509_PARTIAL_CHAIN
    return context
