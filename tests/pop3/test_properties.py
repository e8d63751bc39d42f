"""Hypothesis: whatever bytes arrive, split however, the core raises only typed errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pop3watch.errors import Pop3WatchError
from pop3watch.pop3 import NEED_DATA, Capa, Greeting, Limits, MultiLine, Pop3Connection


def feed_all(conn: Pop3Connection, chunks: list[bytes]) -> list[object]:
    events: list[object] = []
    for chunk in chunks:
        conn.receive_data(chunk)
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            events.append(event)
            if not (isinstance(event, Greeting) and event.ok):
                return events
            conn.send(Capa())
    return events


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, start = [], 0
    for p in points:
        pieces.append(data[start:p])
        start = p
    pieces.append(data[start:])
    return [p for p in pieces if p]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=4096), st.lists(st.integers(min_value=0), max_size=20))
def test_arbitrary_bytes_raise_only_typed_errors(data: bytes, cuts: list[int]) -> None:
    conn = Pop3Connection(Limits(max_line=256, max_multiline=1024))
    try:
        feed_all(conn, split(data, cuts))
        conn.receive_data(b"")
        conn.next_event()
    except Pop3WatchError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\0"),
            max_size=40,
        ),
        max_size=20,
    ),
    st.lists(st.integers(min_value=0), max_size=30),
)
def test_split_points_never_change_the_events(lines: list[str], cuts: list[int]) -> None:
    body = b"".join(
        ("." + line if line.startswith(".") else line).encode() + b"\r\n" for line in lines
    )
    data = b"+OK caps\r\n" + body + b".\r\n"

    def run(chunks: list[bytes]) -> list[object]:
        conn = Pop3Connection()
        return feed_all(conn, [b"+OK hi\r\n"]) + feed_all(conn, chunks)

    whole = run([data])
    pieces = run(split(data, cuts))
    assert whole == pieces
    assert isinstance(whole[-1], MultiLine)
    assert whole[-1].lines == tuple(line.strip("\r\n") for line in lines)
