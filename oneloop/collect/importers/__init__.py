"""File importers (issue 4, part 6): CSV, XLSX and JSONL exports into the event log.

A YAML mapping (``mapping``) says which columns identify the person, which are traits and
which event a row is; ``readers`` read the file (and settle a CSV's encoding), ``mapper`` turns
a record into a Segment-spec call with a stable message id, and ``runs`` streams the records in
chunks through ``spec.parse_message`` and ``ingest``, the one door into the log, committing each
chunk with the run's progress so an interrupted import resumes and a repeated one adds nothing.

Importing this package registers the dead-letter reparser for the ``import`` origin.
"""

from oneloop.collect.importers.mapper import map_record, map_row, remap_payload
from oneloop.collect.importers.mapping import (
    Mapping,
    load_mapping,
    parse_mapping,
    shipped_mappings,
)
from oneloop.collect.importers.runs import (
    CHUNK,
    SEGMENT,
    ImportReport,
    import_file,
    remap_dead_letter,
    reparse_import,
)

__all__ = [
    "CHUNK",
    "SEGMENT",
    "ImportReport",
    "Mapping",
    "import_file",
    "load_mapping",
    "map_record",
    "map_row",
    "parse_mapping",
    "remap_dead_letter",
    "remap_payload",
    "reparse_import",
    "shipped_mappings",
]
