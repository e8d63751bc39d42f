"""Transcripts: secrets scrubbed in every form, control characters escaped, size bounded."""

from __future__ import annotations

import base64

from pop3watch.probe.transcript import MAX_LINES, Redactor, Transcript, escape


def test_escape_removes_terminal_control() -> None:
    assert escape("plain text") == "plain text"
    assert escape("a\x1b[2Jb\x07c\x7f") == "a\\x1b[2Jb\\x07c\\x7f"
    assert escape("tab\there") == "tab\\x09here"


def test_redactor_scrubs_plain_and_base64_forms() -> None:
    redact = Redactor()
    redact.add("hunter22")
    encoded = base64.b64encode(b"hunter22").decode()
    assert redact(f"pw=hunter22 b64={encoded}") == "pw=*** b64=***"


def test_redactor_scrubs_secrets_of_any_length() -> None:
    """A two- or one-character password echoed by a server is still scrubbed."""
    redact = Redactor()
    redact.add("Qz")
    assert redact("wrong password Qz, b64 UXo=") == "wrong password ***, b64 ***"
    redact.add("7")
    assert redact("pin 7") == "pin ***"


def test_redactor_ignores_an_empty_secret() -> None:
    redact = Redactor()
    redact.add("")
    assert redact("+OK nothing to hide") == "+OK nothing to hide"


def test_redactor_prefers_the_longest_secret() -> None:
    redact = Redactor()
    redact.add("abc", "abcdef")
    assert redact("xabcdefx") == "x***x"


def test_transcript_is_bounded_and_redacted() -> None:
    redact = Redactor()
    redact.add("s3cret!")
    transcript = Transcript(redact)
    for i in range(MAX_LINES + 50):
        transcript.server(f"line {i} s3cret! \x1b" + "x" * 1000)
    lines = transcript.lines()
    assert len(lines) == MAX_LINES + 1
    assert "50 more lines dropped" in lines[-1].text
    assert all("s3cret!" not in line.text and "\x1b" not in line.text for line in lines)
    assert all(len(line.text) <= 303 for line in lines)


def test_a_secret_learned_later_is_scrubbed_from_earlier_lines() -> None:
    """Lines are made safe when read: a secret the check learns after a server said it
    (a SASL mechanism's derived form, say) is scrubbed from that line too."""
    redact = Redactor()
    transcript = Transcript(redact)
    transcript.server("+OK hello token-abc \x1b[31m")
    redact.add("token-abc")
    (line,) = transcript.lines()
    assert line.text == "+OK hello *** \\x1b[31m"


def test_what_the_server_said_is_rendered_only_when_read_and_made_safe() -> None:
    """Events go in as data and become lines in rows(): a passing check whose
    transcript nobody reads never renders them; a read one is redacted, escaped and
    bounded like text lines, however many lines one answer renders to."""
    rendered: list[tuple[str, ...]] = []

    def render(said: tuple[str, ...]) -> list[str]:
        rendered.append(said)
        return [f"S{i}: {text}" for i, text in enumerate(said)]

    redact = Redactor()
    transcript = Transcript(redact)
    transcript.client("CAPA")
    transcript.server_said(("+OK", "X-TOKEN t0ken \x1b[2J"), render)
    transcript.server_said(tuple(f"cap {i}" for i in range(MAX_LINES + 10)), render)
    assert rendered == []
    redact.add("t0ken")  # learned after the server said it
    lines = transcript.lines()
    assert len(rendered) == 2
    assert [line.dir for line in lines[:3]] == ["C", "S", "S"]
    assert lines[2].text == "S1: X-TOKEN *** \\x1b[2J"
    assert len(lines) == MAX_LINES + 1
    assert lines[-1].text == "... 13 more lines dropped"
