"""What a worker runs beside the log's consumers, in one place for `oneloop worker` and the
consumers thread of `oneloop serve`: the tasks registered at import, and those that need the
settings to exist (the bus relay, notification delivery)."""

from __future__ import annotations

from oneloop.channels.outbox import delivery_tasks
from oneloop.collect import consumers
from oneloop.collect.consumers import Task
from oneloop.core.bus import bus_tasks
from oneloop.core.config import Settings


def worker_tasks(settings: Settings) -> list[Task]:
    return [*consumers.registered_tasks(), *bus_tasks(settings), *delivery_tasks(settings)]
