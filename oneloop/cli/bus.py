"""``oneloop bus``: look at the topics and read them as a consumer group would."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer
from rich.table import Table

from oneloop.cli.common import cli_engine, console, err_console, print_json, reported_errors
from oneloop.core.bus import READ_LIMIT, Bus, Message, bus_for, check_group, get_feed
from oneloop.core.db import session_factory

bus_app = typer.Typer(
    help="The event bus: topics (segment entries and exits, identity's merges) and their readers.",
    no_args_is_help=True,
)

FOLLOW_BLOCK_MS = 1_000


@bus_app.command(
    "tail",
    epilog="Example: oneloop bus tail segments.membership --group journeys --follow --json",
)
def tail(
    topic: Annotated[str, typer.Argument(help="the topic, e.g. segments.membership")],
    group: Annotated[
        str, typer.Option(help="the consumer group whose unacknowledged messages are read")
    ] = "tail",
    follow: Annotated[
        bool, typer.Option("--follow", help="keep waiting for new messages until Ctrl-C")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per line")] = False,
) -> None:
    """Print the messages of TOPIC that GROUP has not acknowledged yet, and acknowledge
    them: running it again prints only what came since (use a group of its own)."""
    with reported_errors(), cli_engine() as (settings, engine):
        get_feed(topic)
        check_group(group)
        bus = bus_for(settings, session_factory(engine))
        try:
            _tail(bus, topic, group, follow=follow, as_json=as_json)
        except KeyboardInterrupt:
            pass
        finally:
            bus.close()


def _tail(bus: Bus, topic: str, group: str, *, follow: bool, as_json: bool) -> None:
    """Acknowledges each batch after printing it: an interrupted tail prints that batch again
    next time rather than losing it."""
    shown = 0
    while True:
        messages = bus.read(group, topic, READ_LIMIT, FOLLOW_BLOCK_MS if follow else 0)
        for message in messages:
            _show(message, as_json)
        bus.ack(group, topic, messages)
        shown += len(messages)
        if not messages and not follow:
            if not shown:
                err_console.print(f"nothing new on {topic} for the group {group}", markup=False)
            return


def _show(message: Message, as_json: bool) -> None:
    if as_json:
        typer.echo(orjson.dumps(message.as_json()).decode())
        return
    # Bodies carry names people typed (segment codes): printed as text, never as markup.
    body = orjson.dumps(message.body).decode()
    console.print(
        f"{message.seq:>8}  {message.at.isoformat()}  {message.key}  {body}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


@bus_app.command("topics", epilog="Example: oneloop bus topics --json")
def topics(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List the topics with each one's latest seq and its consumer groups; with Redis
    (ONELOOP_BUS_URL) also how far the relay is, the stream's length and each group's
    pending messages."""
    with reported_errors(), cli_engine() as (settings, engine):
        bus = bus_for(settings, session_factory(engine))
        try:
            found = bus.status()
        finally:
            bus.close()
    if as_json:
        print_json(
            [
                {
                    "topic": t.topic,
                    "latest_seq": t.latest_seq,
                    "relayed_seq": t.relayed_seq,
                    "stream_length": t.stream_length,
                    "groups": [vars(g) for g in t.groups],
                }
                for t in found
            ]
        )
        return
    is_redis = bool(settings.bus_url)
    table = Table("topic", "latest seq", title="bus: Redis" if is_redis else "bus: database")
    if is_redis:
        table.add_column("relayed seq")
        table.add_column("stream length")
    table.add_column("groups")
    for t in found:
        groups = ", ".join(
            f"{g.name} (pending {g.pending}, lag {g.lag})"
            if is_redis
            else f"{g.name} (acked to {g.acked_seq})"
            for g in t.groups
        )
        redis_cells = [str(t.relayed_seq), str(t.stream_length)] if is_redis else []
        table.add_row(t.topic, str(t.latest_seq), *redis_cells, groups or "none")
    console.print(table)
