"""Tracking events in Segment's spec, and the files they are written to.

Message shapes follow https://segment.com/docs/connections/spec/ (common fields, track, page,
screen, identify, alias, group) and the e-commerce spec for orders. Times: `timestamp` is
when it happened, `originalTimestamp` what the (possibly wrong) client clock said, `sentAt`
when the batch left the device; `receivedAt` is the collector's to set, so it is absent.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from oneloop.demo.clock import DAY_MS, START_MS, iso_utc
from oneloop.demo.devices import Device
from oneloop.demo.draw import encode_json, uuid4
from oneloop.demo.people import Person


def encode_string(text: str) -> str:
    """The inside of a JSON string literal (quotes and control characters escaped)."""
    return encode_json(text)[1:-1]


_WEEK_MS = 7 * DAY_MS
_KEY_WIDTH = 22  # 13 digits of epoch milliseconds, then 9 digits of arrival order


@dataclass(frozen=True, slots=True)
class Page:
    """A page view, encoded once: analytics.js sends it as the page call's properties, as
    its `context.page`, and again in the context of every track call made on that page."""

    url: str
    json: str


def page_props(site: str, path: str, title: str, referrer: str, search: str = "") -> Page:
    """analytics.js's automatic page properties."""
    url = site + path + search
    props = {"path": path, "referrer": referrer, "search": search, "title": title, "url": url}
    return Page(url, encode_json(props))


class EventFile:
    """One business unit's event file, written in timestamp order.

    People are simulated one after another over the whole period, so messages arrive out of
    time order. Rather than hold every line in memory (about 1 GB for 500k events), each line
    goes to a weekly spill file behind a fixed-width sort key (time, then arrival order: a
    stable tie-break), and `finish` sorts one week at a time.
    """

    def __init__(self, spill_dir: Path, name: str) -> None:
        self.name = name
        self._spill_dir = spill_dir
        self._buckets: dict[int, IO[str]] = {}
        self._pending: dict[int, list[str]] = {}
        self._seq = 0

    def add(self, ts: int, line: str) -> None:
        """Queue one encoded message (a JSON object without the newline)."""
        week = max(0, (ts - START_MS) // _WEEK_MS)
        pending = self._pending.get(week)
        if pending is None:
            pending = self._pending[week] = []
        pending.append(f"{ts:013d}{self._seq:09d}{line}\n")
        self._seq += 1
        if len(pending) >= 512:
            self._spill(week)

    def _spill(self, week: int) -> None:
        out = self._buckets.get(week)
        if out is None:
            path = self._spill_dir / f"{self.name}.{week:03d}.spill"
            out = self._buckets[week] = path.open("w", encoding="utf-8")
        out.write("".join(self._pending[week]))
        self._pending[week].clear()

    def finish(self, path: Path) -> int:
        """Write the sorted file and remove the spill files; returns the number of lines.

        Sorting bytes is enough: the key is ASCII digits of fixed width, and the JSON after
        it never contains a raw newline.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        for week in self._pending:
            self._spill(week)
        written = 0
        with path.open("wb") as out:
            for week in sorted(self._buckets):
                self._buckets[week].close()
                spill = self._spill_dir / f"{self.name}.{week:03d}.spill"
                lines = spill.read_bytes().split(b"\n")
                lines.pop()  # after the last newline
                lines.sort()
                out.write(b"".join([line[_KEY_WIDTH:] + b"\n" for line in lines]))
                written += len(lines)
                spill.unlink()
        self._buckets.clear()
        self._pending.clear()
        return written


class Truth:
    """`truth/identities.csv`: which person each identifier occurrence really belongs to."""

    HEADER = ("source", "record_key", "identifier_type", "identifier_value", "person_id")

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", encoding="utf-8", newline="", buffering=1 << 20)
        self._writer = csv.writer(self._file, lineterminator="\n")
        self._writer.writerow(self.HEADER)
        self.rows = 0

    def add(self, source: str, record_key: str, id_type: str, value: str, pid: str) -> None:
        if value:
            self._writer.writerow((source, record_key, id_type, value, pid))
            self.rows += 1

    def close(self) -> None:
        self._file.close()


class Emitter:
    """Builds one business unit's messages for one person at a time.

    Messages are assembled as text from pre-encoded parts (the device's context, the page)
    rather than as one dict through `json`: the context is most of every line, and
    encoding it once per device instead of once per event halves the generator's time.

    Each identifier a person shows in this file is reported to the truth file once, with the
    messageId of its first occurrence as the record key: enough to score a resolution
    without a truth row per event.
    """

    def __init__(self, bu: str, sink: EventFile, truth: Truth) -> None:
        self.bu = bu
        self.source = f"events/{bu}.jsonl"
        self.sink = sink
        self.truth = truth
        self.count = 0
        self._pid = ""
        self._seen: set[tuple[str, str]] = set()  # membership only: never iterated
        self._heads: dict[tuple[str, str], str] = {}

    def begin(self, person: Person) -> None:
        self._pid = person.pid
        self._seen = set()

    def _head(self, kind: str, label: str) -> str:
        """`{"type":"track","event":"Order Completed"` and the like, rendered once."""
        key = (kind, label)
        head = self._heads.get(key)
        if head is None:
            head = '{"type":"' + kind + '"'
            if label:
                field = "event" if kind == "track" else "name"
                head += f',"{field}":{encode_json(label)}'
            self._heads[key] = head
        return head

    def _send(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        head: str,
        user_id: str | None,
        body: str,
        ids: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Add the common fields between `head` and `body`, queue the line, and report the
        identifiers it shows. Key order is the same in every message, for readability."""
        message_id = uuid4(rng)
        user = f',"userId":"{encode_string(user_id)}"' if user_id else ""
        stamp = iso_utc(ts)
        random_ = rng.random
        if dev.platform == "server":
            original = sent = iso_utc(ts + int(random_() * 400))
        else:
            local = ts + dev.skew_ms
            original = iso_utc(local) if dev.skew_ms else stamp
            if dev.platform == "web":
                delay = 5 + int(random_() * 1500)
            else:
                delay = 300 + int(random_() * 30_000)  # mobile SDKs flush in batches
            if dev.is_mobile and random_() < 0.03:
                delay += 600_000 + int(random_() * 6 * 3_600_000)  # queued while offline
            sent = iso_utc(local + delay)
        self.sink.add(
            ts,
            f'{head},"messageId":"{message_id}"{dev.anonymous_part}{user},"timestamp":"{stamp}"'
            f',"originalTimestamp":"{original}","sentAt":"{sent}"{body}',
        )
        self.count += 1
        seen = self._seen
        for id_type, value in (
            ("user_id", user_id or ""),
            ("anonymous_id", dev.anonymous_id),
            ("device_id", dev.device_id or ""),
            *ids,
        ):
            if value and (id_type, value) not in seen:
                seen.add((id_type, value))
                self.truth.add(self.source, message_id, id_type, value, self._pid)

    @staticmethod
    def _context(
        dev: Device,
        page: Page | None = None,
        campaign: dict[str, str] | None = None,
        traits: dict[str, str] | None = None,
    ) -> str:
        """`,"context":{...}}`: the device's context plus what this message adds."""
        if page is None and campaign is None and traits is None:
            return ',"context":' + dev.context_json + "}"
        extra = [',"context":', dev.context_json[:-1]]
        if page is not None:
            extra += (',"page":', page.json)
        if campaign is not None:
            extra += (',"campaign":', encode_json(campaign))
        if traits is not None:
            extra += (',"traits":', encode_json(traits))
        extra.append("}}")
        return "".join(extra)

    def track(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        event: str,
        properties: dict[str, object],
        *,
        user_id: str | None = None,
        page: Page | None = None,
        campaign: dict[str, str] | None = None,
        traits: dict[str, str] | None = None,
        ids: tuple[tuple[str, str], ...] = (),
    ) -> None:
        body = (
            ',"properties":' + encode_json(properties) + self._context(dev, page, campaign, traits)
        )
        self._send(rng, dev, ts, self._head("track", event), user_id, body, ids)

    def page(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        name: str,
        page: Page,
        *,
        user_id: str | None = None,
        campaign: dict[str, str] | None = None,
    ) -> None:
        """analytics.js sends the page both as properties and as `context.page`."""
        body = ',"properties":' + page.json + self._context(dev, page, campaign)
        self._send(rng, dev, ts, self._head("page", name), user_id, body)

    def screen(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        name: str,
        properties: dict[str, object],
        *,
        user_id: str | None = None,
    ) -> None:
        body = ',"properties":' + encode_json(properties) + self._context(dev)
        self._send(rng, dev, ts, self._head("screen", name), user_id, body)

    def identify(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        user_id: str | None,
        traits: dict[str, object],
        *,
        page: Page | None = None,
        ids: tuple[tuple[str, str], ...] = (),
    ) -> None:
        body = ',"traits":' + encode_json(traits) + self._context(dev, page)
        self._send(rng, dev, ts, self._head("identify", ""), user_id, body, ids)

    def alias(self, rng: random.Random, dev: Device, ts: int, user_id: str) -> None:
        """Segment's alias: `previousId` (the cookie) becomes `userId`."""
        body = ',"previousId":' + encode_json(dev.anonymous_id) + self._context(dev)
        self._send(rng, dev, ts, self._head("alias", ""), user_id, body)

    def group(
        self,
        rng: random.Random,
        dev: Device,
        ts: int,
        user_id: str | None,
        group_id: str,
        traits: dict[str, object],
    ) -> None:
        """B2B: the person belongs to a company account (`groupId` is the CRM account)."""
        body = (
            ',"groupId":' + encode_json(group_id) + ',"traits":' + encode_json(traits)
            + self._context(dev)
        )  # fmt: skip
        self._send(rng, dev, ts, self._head("group", ""), user_id, body)
