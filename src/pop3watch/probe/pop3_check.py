"""The POP3 check: connect, greet, (STLS/TLS), (log in), (STAT), QUIT, and grade.

Job: run one POP3 session exactly as the settings ask, time every phase, and return a
``CheckResult`` in the shared vocabulary. Rules:
- one deadline bounds everything (a server dripping a byte a second cannot hold it);
- credentials are never sent unless TLS is active or the owner allowed plain text;
- QUIT is sent whenever the session is still usable, and DELE never is;
- every failure becomes one typed error with its phase; no foreign exception escapes
  (cancellation excepted: the service may cancel a check while shutting down).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from contextlib import suppress
from datetime import UTC, datetime

from pop3watch.aio import Deadline
from pop3watch.errors import (
    AuthFailed,
    AuthUnsupported,
    CheckTimeout,
    ConfigMissing,
    Disconnected,
    InsecureAuthRefused,
    MailboxLocked,
    Phase,
    Pop3WatchError,
    ProtocolViolation,
    ServiceUnavailable,
    StarttlsInjection,
    TlsFailed,
    TlsUnavailable,
)
from pop3watch.pop3 import (
    Apop,
    Auth,
    Capa,
    Capabilities,
    Challenge,
    Err,
    Event,
    Greeting,
    Limits,
    MultiLine,
    Ok,
    Pass,
    Quit,
    SaslAbort,
    SaslCancel,
    SaslResponse,
    SaslUnusable,
    SaslViolation,
    Scram,
    Stat,
    Stls,
    User,
    apop_digest,
    build_mechanism,
    changes_under_saslprep,
    code_is,
    decimal_seconds,
    preferred_mechanisms,
)
from pop3watch.probe.connect import describe_os_error, ip_literal, open_stream, resolve
from pop3watch.probe.result import CheckResult, MailboxInfo, TlsInfo, round_ms
from pop3watch.probe.secrets import resolve_secret
from pop3watch.probe.session import Pop3Session
from pop3watch.probe.settings import AuthMode, CheckSettings, TlsMode
from pop3watch.probe.stream import Stream
from pop3watch.probe.tls import (
    cert_info,
    chain_expiry,
    check_pin,
    client_context,
    handshake_error,
    is_not_tls,
    legacy_probe_context,
    old_version_error,
    trust_key,
    worth_diagnosing,
)
from pop3watch.probe.transcript import KeepTranscript, Redactor, Transcript, escape
from pop3watch.probe.verdict import grade
from pop3watch.probe.verified_chains import (
    VERIFIED_CHAINS,
    presented_chain,
)

# Timing keys per phase; STLS and both handshakes count as "tls". Precomputed: this
# runs several times per check, and an enum's .value is a property call.
_TIMING_KEY = {phase: "tls" if phase is Phase.STARTTLS else phase.value for phase in Phase}
_CONFIG_KEY = _TIMING_KEY[Phase.CONFIG]  # reading secrets: not a phase the result reports
_QUIT_GRACE_S = 2.0
_QUIT = Quit()  # commands are values; this one has no arguments
# Longest wait for the server's side of a TLS close; never past the check's deadline.
_CLOSE_GRACE_S = 1.0


async def check_pop3(
    settings: CheckSettings,
    *,
    limits: Limits | None = None,
    transcript: KeepTranscript = KeepTranscript.ALWAYS,
) -> CheckResult:
    """Run one POP3 check. Never raises for anything the server or network does.

    ``transcript`` says when the result carries the session transcript: always, or
    only when the check did not pass (what the service keeps).
    """
    return await _Pop3Check(settings, limits, transcript).run()


def _describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionResetError):
        return "connection reset by peer"
    return describe_os_error(exc)


def _err_detail(event: Err) -> str:
    return f"[{event.code}] {event.text}" if event.code else event.text


def _login_delay_s(code: str | None, capabilities: Capabilities) -> int | None:
    """The seconds a ``[LOGIN-DELAY n]`` code names (some servers add them), else
    those of the CAPA LOGIN-DELAY line, if any."""
    seconds = decimal_seconds((code or "").partition(" ")[2].strip())
    return seconds if seconds is not None else capabilities.login_delay


def _sasl_abort_error(detail: str, abort: SaslAbort) -> Pop3WatchError:
    """The verdict of a SASL exchange the mechanism cancelled (``SaslAbort``'s kinds)."""
    if isinstance(abort, SaslViolation):
        return ProtocolViolation(detail)
    if isinstance(abort, SaslUnusable):
        return AuthUnsupported(detail)
    return AuthFailed(detail)


_NO_CAPABILITIES = Capabilities()


class _VerifyInFull(Exception):
    """A handshake against remembered chains (``verified_chains``) met a chain that is not
    one of them: the check starts over on a new connection and verifies in full. Never
    leaves the check."""


class _Pop3Check:
    """State of one run; one instance per check, thrown away afterwards."""

    def __init__(
        self,
        settings: CheckSettings,
        limits: Limits | None,
        keep_transcript: KeepTranscript = KeepTranscript.ALWAYS,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.keep_transcript = keep_transcript
        self.redactor = Redactor()
        self.t0 = time.perf_counter()
        self.started_at = datetime.now(UTC)
        self.transcript = Transcript(self.redactor, started=self.t0)
        self.phase = Phase.CONFIG
        # (timing key, perf_counter) where each phase began; (None, t) where the last ended.
        self._marks: list[tuple[str | None, float]] = []
        self.stream: Stream | None = None
        self.session: Pop3Session | None = None
        self.address: str | None = None
        self.rtt_ms: float | None = None
        self.greeting: Greeting | None = None
        self.tls: TlsInfo | None = None
        self.capabilities = _NO_CAPABILITIES
        self.auth_mechanism: str | None = None
        self.mailbox: MailboxInfo | None = None
        self.quit_done = False
        # Whether a chain verified in full by an earlier check may stand for this one.
        self.reuse_verified = True

    # --- bookkeeping ------------------------------------------------------------------

    def _enter(self, phase: Phase) -> None:
        """Make ``phase`` the current one (errors are blamed on it); it runs until the next
        ``_enter`` or ``_stop_clock``, and a phase entered twice adds up (``_timings``).

        A time mark per phase rather than a ``with`` block: phases follow one another and
        never nest, and the context-manager protocol costs several calls per phase.
        """
        self.phase = phase
        self._marks.append((_TIMING_KEY[phase], time.perf_counter()))

    def _stop_clock(self) -> None:
        """End the running phase: what follows is no phase of the check."""
        self._marks.append((None, time.perf_counter()))

    def _timings(self) -> dict[str, float]:
        """Milliseconds per timing key: each phase from its mark to the next one."""
        timings: dict[str, float] = {}
        marks = self._marks
        for i in range(len(marks) - 1):
            key, began = marks[i]
            if key is not None and key != _CONFIG_KEY:
                timings[key] = timings.get(key, 0.0) + (marks[i + 1][1] - began)
        for key, seconds in timings.items():
            timings[key] = round_ms(seconds * 1000)
        return timings

    @property
    def _session(self) -> Pop3Session:
        assert self.session is not None
        return self.session

    # --- the run ----------------------------------------------------------------------

    async def run(self) -> CheckResult:
        s = self.settings
        error: Pop3WatchError | None = None
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + s.timeout
        try:
            try:
                with Deadline(loop, deadline_at):
                    try:
                        try:
                            await self._run_session()
                        finally:
                            self._stop_clock()  # the polite QUIT below is no phase
                    except Pop3WatchError as exc:
                        error = exc
                        await self._quit_quietly()
            except TimeoutError:
                if error is None:
                    detail = f"nothing complete within {s.timeout:g} s"
                    if not self.reuse_verified:  # the time went to two connections
                        detail += (
                            ", having started over on a new connection to verify a"
                            " certificate not verified before"
                        )
                    error = CheckTimeout(detail, phase=self.phase)
            except (OSError, EOFError) as exc:
                error = Disconnected(_describe_os_error(exc), phase=self.phase)
        finally:
            # The close runs after the Deadline (a timed-out check must still close), so
            # its grace is what is left of the timeout: the check never outlasts it.
            grace_s = min(_CLOSE_GRACE_S, max(0.0, deadline_at - loop.time()))
            await self._close(clean=error is None or self.quit_done, grace_s=grace_s)
        if error is not None:
            if error.phase is None:
                error.phase = self.phase
            error.detail = escape(self.redactor(error.detail))
            if error.server_text is not None:  # quoted by the message: made safe first
                error.server_text = escape(self.redactor(error.server_text))
            self.transcript.note(f"{error.code}: {error.message}")
        return self._result(error)

    async def _run_session(self) -> None:
        s = self.settings
        auth = s.auth is not AuthMode.NONE
        secret = await self._secret() if auth else None
        self._enter(Phase.DNS)
        addresses = ip_literal(s.host, s.ip_family) or await resolve(
            s.host, s.effective_port, s.ip_family
        )
        try:
            await self._open(addresses)
        except _VerifyInFull as why:
            assert self.address is not None
            self._start_over(str(why))
            await self._open([self.address])
        if auth:
            assert secret is not None
            self._enter(Phase.AUTH)
            await self._auth(secret)
        if s.stat:
            self._enter(Phase.STAT)
            await self._stat()
        self._enter(Phase.QUIT)
        event = await self._session.command(_QUIT)
        self.quit_done = True
        if isinstance(event, Err):
            raise ServiceUnavailable(f"QUIT answered -ERR: {_err_detail(event)}")

    async def _open(self, addresses: list[str]) -> None:
        """Connect, read the greeting and, with STLS, upgrade: everything up to the
        point where the session is secured (or stays plain), which is what a full
        verification on a new connection repeats."""
        s = self.settings
        await self._connect(addresses)
        session = self._session
        self._enter(Phase.GREETING)
        event = await session.read_event()
        # Both stamps come from the kernel and the connect call (see Stream), not from
        # after an await, so a busy event loop does not skew the response time.
        stream = session.stream
        self.rtt_ms = max(0.0, (stream.received_at - stream.ready_at) * 1000)
        assert isinstance(event, Greeting)
        self.greeting = event
        if not event.ok:
            raise ServiceUnavailable(f"greeting: {_err_detail(Err(event.text, event.code))}")
        if s.capa or s.tls.starttls or s.auth is AuthMode.SASL:
            self._enter(Phase.CAPA)
            await self._capa()
        if s.tls.starttls:
            await self._starttls()

    def _start_over(self, reason: str) -> None:
        """Drop the connection whose chain was not a remembered one (no credential has
        crossed it yet) and forget what it told us; phases entered again add up."""
        self.transcript.note(f"{reason}; verifying it in full on a new connection")
        if self.stream is not None:
            self.stream.abort()
        self.stream = None
        self.session = None
        self.rtt_ms = None
        self.greeting = None
        self.tls = None
        self.capabilities = _NO_CAPABILITIES
        self.reuse_verified = False

    async def _secret(self) -> str:
        """The password or token, for a check that logs in."""
        s = self.settings
        self._enter(Phase.CONFIG)
        missing = s.missing_fields()
        if missing:
            raise ConfigMissing(f"auth {s.auth.value} needs {', '.join(missing)}")
        source = s.secret_source()
        assert source is not None
        secret = await resolve_secret(source, token=s.uses_token)
        self.redactor.add(secret)
        return secret

    # --- connection and TLS -----------------------------------------------------------

    async def _connect(self, addresses: list[str]) -> None:
        s = self.settings
        self._enter(Phase.CONNECT)
        self.stream = await open_stream(addresses, s.effective_port)
        self.address = self.stream.address
        if s.tls.implicit:
            self._enter(Phase.TLS)
            upgraded = await self._handshake(
                "implicit", allow_fallback=s.tls is TlsMode.TLS_IF_AVAILABLE
            )
            if not upgraded:
                self.transcript.note(
                    "the server does not speak TLS on this port; falling back to plain text"
                )
                self.stream.abort()
                self._enter(Phase.CONNECT)
                self.stream = await open_stream([self.stream.address], s.effective_port)
        self.session = Pop3Session(self.stream, self.transcript, self.limits)

    def _server_hostname(self) -> str:
        return self.settings.server_name or self.settings.host

    async def _handshake(self, mode: str, *, allow_fallback: bool = False) -> bool:
        """TLS handshake on the current stream; False only for an allowed fallback."""
        s = self.settings
        assert self.stream is not None
        pinned = s.fingerprint is not None
        # The chain is verified: the trust store is looked at once, for both contexts.
        key = trust_key(s.ca_file, self._server_hostname()) if s.verify and not pinned else None
        context = client_context(verify=s.verify, ca_file=s.ca_file, pinned=pinned, key=key)
        remembered: ssl.SSLContext | None = None
        if key is not None and self.reuse_verified:
            remembered = VERIFIED_CHAINS.context_for(key)
        if self.session is None and self.stream.buffered:
            # Implicit TLS: a TLS server never speaks first; plain text here means the
            # server does not speak TLS on this port.
            if allow_fallback:
                return False
            raise TlsFailed("the server spoke plain text before the handshake: no TLS on this port")
        try:
            if self.session is not None:
                await self.session.start_tls(remembered or context, self._server_hostname())
            else:
                await self.stream.start_tls(remembered or context, self._server_hostname())
        except Pop3WatchError:
            raise
        except (OSError, EOFError) as exc:
            if (
                key is not None
                and remembered is not None
                and isinstance(exc, ssl.SSLCertVerificationError)
            ):
                # Only the remembered leaves are trusted here: whatever the server sent
                # instead is for a full verification to judge.
                VERIFIED_CHAINS.missed(key)
                raise _VerifyInFull(
                    f"the server's certificate is not one verified before ({exc.verify_message})"
                ) from None
            if allow_fallback and is_not_tls(exc):
                return False
            if self.session is not None and is_not_tls(exc):
                # After its STLS +OK the server owes us a TLS ServerHello and nothing
                # else. Plain text arriving instead, even a moment later than the +OK
                # (caught before the handshake otherwise), is data between the STLS
                # reply and the handshake: the injection this abort exists for.
                raise StarttlsInjection(
                    "plain text arrived after the STLS reply instead of a TLS handshake"
                ) from None
            if worth_diagnosing(exc):
                version = await self._diagnose_old_tls(mode)
                if version is not None:
                    raise old_version_error(version) from None
            raise handshake_error(exc) from None
        ssl_object = self.stream.ssl_object
        assert ssl_object is not None
        # The certificate above the leaf that expires first, in the chain OpenSSL verified.
        first_expiring: bytes | None = None
        if key is not None and remembered is None:
            first_expiring = VERIFIED_CHAINS.record(key, ssl_object)
        elif key is not None:
            chain = presented_chain(ssl_object)
            found = None if chain is None else VERIFIED_CHAINS.verified_for(key, chain)
            if found is None:
                # Dropped without QUIT: nothing has been asked of a server whose chain
                # is not verified yet, and the new connection says QUIT in its place.
                if chain is not None and VERIFIED_CHAINS.knows(key, chain):
                    raise _VerifyInFull("the chain verified before is due to be verified again")
                VERIFIED_CHAINS.missed(key)
                raise _VerifyInFull(
                    "the server presented a chain other than the one verified before"
                )
            first_expiring = found.first_expiring
        der = ssl_object.getpeercert(binary_form=True)
        if der is None:
            raise handshake_error(ValueError("the server presented no certificate"))
        now = datetime.now(UTC)
        cert = cert_info(der, verified=s.verify or pinned, now=now)
        if s.fingerprint is not None:
            check_pin(cert, s.fingerprint, now)
        cipher = ssl_object.cipher()
        self.tls = TlsInfo(
            mode=mode,
            version=ssl_object.version(),
            cipher=cipher[0] if cipher else None,
            cert=cert,
            chain_expiry=chain_expiry(first_expiring, now),
        )
        self.transcript.note(
            f"TLS {self.tls.version} {self.tls.cipher}, certificate {cert.subject}"
            + (" (the chain verified in full before)" if remembered is not None else "")
        )
        return True

    async def _diagnose_old_tls(self, mode: str) -> str | None:
        """Repeat the handshake on a new connection with a context that accepts TLS 1.0
        and report the version the server picked when it is below 1.2. Sends no
        credential; the connection is dropped right after the handshake."""
        assert self.address is not None
        stream: Stream | None = None
        try:
            stream = await open_stream([self.address], self.settings.effective_port)
            if mode == "starttls":
                session = Pop3Session(stream, Transcript(Redactor()), self.limits)
                await session.read_event()
                if not isinstance(await session.command(Stls()), Ok):
                    return None
                await session.start_tls(legacy_probe_context(), self._server_hostname())
            else:
                await stream.start_tls(legacy_probe_context(), self._server_hostname())
            ssl_object = stream.ssl_object
            version = ssl_object.version() if ssl_object else None
        except (Pop3WatchError, OSError, EOFError):
            return None
        finally:
            if stream is not None:
                stream.abort()
        if version in ("TLSv1", "TLSv1.1", "SSLv3"):
            self.transcript.note(f"diagnostic handshake: the server negotiated {version}")
            return version
        return None

    async def _capa(self) -> None:
        event = await self._session.command(Capa())
        if isinstance(event, MultiLine):
            self.capabilities = Capabilities.from_lines(event.lines)
        else:
            self.capabilities = _NO_CAPABILITIES

    async def _starttls(self) -> None:
        s = self.settings
        required = s.tls is TlsMode.STARTTLS
        # A server that answered CAPA may be taken at its word; one without CAPA is asked.
        if self.capabilities.lines and not self.capabilities.stls:
            if required:
                raise TlsUnavailable("the server does not advertise STLS")
            self.transcript.note("STLS not offered; continuing in plain text")
            return
        self._enter(Phase.STARTTLS)
        event = await self._session.command(Stls())
        if isinstance(event, Err):
            if required:
                raise TlsUnavailable(f"STLS refused: {_err_detail(event)}")
            self.transcript.note("STLS refused; continuing in plain text")
            return
        self._enter(Phase.TLS)  # the STLS exchange and the handshake are both "tls"
        await self._handshake("starttls")
        # RFC 2595: forget what was advertised in clear text and ask again over TLS.
        self.capabilities = _NO_CAPABILITIES
        self._enter(Phase.CAPA)
        await self._capa()

    # --- authentication ---------------------------------------------------------------

    async def _auth(self, secret: str) -> None:
        s = self.settings
        if self.tls is None and not s.allow_plaintext_auth:
            raise InsecureAuthRefused("TLS is not active; set allow_plaintext_auth to permit it")
        user = s.user
        assert user is not None
        if s.auth is AuthMode.USER:
            self.auth_mechanism = "USER"
            try:
                self._expect_ok(await self._session.command(User(user)))
                self._expect_ok(await self._session.command(Pass(secret)))
            except AuthFailed as exc:
                if not self.capabilities.lines or self.capabilities.user:
                    raise
                # Tried anyway (servers forget to advertise it), but a refusal from a
                # server whose CAPA leaves USER out says "not offered", not "wrong".
                raise AuthUnsupported(
                    f"USER is not among the server's capabilities, and login failed: {exc.detail}"
                ) from None
        elif s.auth is AuthMode.APOP:
            self.auth_mechanism = "APOP"
            timestamp = self.greeting.timestamp if self.greeting else None
            if timestamp is None:
                raise AuthUnsupported("APOP: the greeting carries no valid <...@...> timestamp")
            self._expect_ok(await self._session.command(Apop(user, apop_digest(timestamp, secret))))
        else:
            await self._sasl(user, secret)

    def _choose_mechanism(self, secret: str) -> str:
        s = self.settings
        offered = self.capabilities.sasl_mechanisms
        listed = " ".join(offered) or "none"
        if s.sasl_mechanism is not None:
            if self.capabilities.lines and s.sasl_mechanism not in offered:
                raise AuthUnsupported(f"SASL {s.sasl_mechanism} is not offered (offered: {listed})")
            return s.sasl_mechanism
        # A password SASLprep would change derives one SCRAM key on a server that
        # prepares it and another on one that does not (Dovecot): left to a mechanism
        # that does not depend on it, unless the owner names SCRAM.
        ambiguous = changes_under_saslprep(secret)
        for name in preferred_mechanisms(token=s.uses_token, tls_active=self.tls is not None):
            if name in offered and not (ambiguous and name.startswith("SCRAM-")):
                return name
        raise AuthUnsupported(f"no usable SASL mechanism offered (offered: {listed})")

    async def _sasl(self, user: str, secret: str) -> None:
        name = self._choose_mechanism(secret)
        self.auth_mechanism = f"SASL {name}"
        s = self.settings
        mechanism = build_mechanism(
            name,
            user=user,
            secret=secret,
            host=s.host,
            port=s.effective_port,
            tls_active=self.tls is not None,
        )
        auth = Auth.starting(name, mechanism.initial_response())
        mechanism.initial_sent = auth.initial is not None
        try:
            event: Event = await self._session.command(auth)
            while isinstance(event, Challenge):
                try:
                    if mechanism.costly:  # SCRAM's key derivation: not on the event loop
                        answer = await asyncio.to_thread(mechanism.respond, event.data)
                    else:
                        answer = mechanism.respond(event.data)
                except SaslAbort as exc:
                    event = await self._session.command(SaslCancel())
                    raise _sasl_abort_error(f"SASL {name} cancelled: {exc}", exc) from None
                event = await self._session.command(SaslResponse(answer))
            self._expect_ok(event)
        except AuthFailed as exc:
            if isinstance(mechanism, Scram) and changes_under_saslprep(secret):
                exc.detail += (
                    "; the password changes under SASLprep and was used unprepared, as"
                    " Dovecot expects: a server that prepares it derives another key"
                )
            raise
        finally:
            # Also what the mechanism learned from the server (SCRAM's signature). Once
            # is enough: transcripts and error details are redacted when read.
            self.redactor.add(*mechanism.secrets())
        early = mechanism.unfinished()
        if early is not None:
            raise ProtocolViolation(f"SASL {name}: {early}")

    def _expect_ok(self, event: Event) -> None:
        if isinstance(event, Ok):
            return
        if not isinstance(event, Err):
            raise ProtocolViolation(f"unexpected answer {type(event).__name__}")
        detail = _err_detail(event)
        if code_is(event.code, "IN-USE"):
            raise MailboxLocked(detail)
        if code_is(event.code, "SYS/TEMP") or code_is(event.code, "SYS/PERM"):
            raise ServiceUnavailable(detail, phase=Phase.AUTH)
        if code_is(event.code, "LOGIN-DELAY"):
            # The commonest false alarm of a POP3 login monitor: checks closer together
            # than the server lets one user log in. Say so, before anyone resets a
            # password that is fine.
            delay = _login_delay_s(event.code, self.capabilities)
            every = f" (it allows one every {delay} s)" if delay is not None else ""
            raise AuthFailed(
                f"the server refuses a login this soon after the last one{every}: the"
                f" password may be right, and checking less often avoids this; {detail}"
            )
        raise AuthFailed(detail)

    async def _stat(self) -> None:
        event = await self._session.command(Stat())
        if isinstance(event, Err):
            raise ServiceUnavailable(f"STAT answered -ERR: {_err_detail(event)}")
        assert isinstance(event, Ok)
        fields = event.text.split()
        # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and
        # Arabic-Indic digits (which int() reads), neither of which RFC 1939 allows.
        if len(fields) < 2 or not all(f.isascii() and f.isdigit() for f in fields[:2]):
            raise ProtocolViolation("STAT answer is not '+OK count octets'", server_text=event.text)
        self.mailbox = MailboxInfo(messages=int(fields[0]), octets=int(fields[1]))

    # --- ending -------------------------------------------------------------------------

    async def _quit_quietly(self) -> None:
        """Best-effort QUIT after a failure that left the session usable."""
        if self.session is None or not self.session.usable or self.quit_done:
            return
        with suppress(Pop3WatchError, OSError, EOFError, TimeoutError):
            async with asyncio.timeout(_QUIT_GRACE_S):
                await self.session.command(_QUIT)
                self.quit_done = True

    async def _close(self, *, clean: bool, grace_s: float) -> None:
        if self.stream is None:
            return
        if not clean:
            self.stream.abort()
        elif self.stream.ssl_object is not None:
            await self.stream.aclose(grace_s=grace_s)  # let TLS say close_notify
        else:
            self.stream.close()  # plain TCP: nothing to wait for

    def _result(self, error: Pop3WatchError | None) -> CheckResult:
        s = self.settings
        tls = self.tls
        verdict = grade(
            error,
            rtt_ms=self.rtt_ms,
            cert=tls.cert if tls else None,
            chain=tls.chain_expiry if tls else None,
            mailbox=self.mailbox,
            thresholds=s.thresholds,
        )
        timings = self._timings()
        timings["total"] = round_ms((time.perf_counter() - self.t0) * 1000)
        greeting = None
        if self.greeting is not None:
            greeting = escape(self.redactor(self.greeting.text))
        # One validation of plain data: pydantic builds the nested models in Rust, which
        # costs less than constructing each of them in Python first.
        return CheckResult.model_validate(
            {
                "probe": "pop3",
                "status": verdict.status,
                "error": verdict.error,
                "warnings": verdict.warnings,
                "started_at": self.started_at,
                "target": s.target,
                "address": self.address,
                "rtt_ms": round_ms(self.rtt_ms) if self.rtt_ms is not None else None,
                "timings_ms": timings,
                "tls": self.tls,
                # Server text, so redacted and escaped like the greeting and transcript.
                "capabilities": [escape(self.redactor(c)) for c in self.capabilities.lines]
                if self.capabilities.lines
                else [],
                "auth_mechanism": self.auth_mechanism,
                "mailbox": self.mailbox,
                "greeting": greeting,
                "transcript": self.transcript.rows()
                if self.keep_transcript.keeps(verdict.status)
                else [],
            }
        )
