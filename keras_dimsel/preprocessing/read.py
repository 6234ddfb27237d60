"""`ReadRows`: input files to parsed record batches, on any Beam runner.

Files are cut into byte ranges on the driver (sizes only, nothing is read);
each worker reads the whole lines that *start* in its range, so a line that
straddles a boundary belongs to exactly one chunk. Compressed files cannot be
cut and are read as one chunk. All file access goes through Beam's
`FileSystems`, so `gs://`, `s3://` and local paths work alike.

A quoted value may hold line breaks (`keras_dimsel.data.reader.record_ends`),
so a record can straddle two chunks. A chunk that sees its last record run on
past its end (reading up to `MAX_RECORD_LINES` lines further) hands its file
over: the chunks of that file are dropped and the file is read again by one
worker, chunk after chunk, carrying the open record over. Files whose records
each end on their line, nearly all, are read in parallel as before.
"""

from __future__ import annotations

from typing import Iterator, Optional

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from keras_dimsel.data.reader import (
    MAX_RECORD_LINES,
    UTF8_BOM,
    Chunk,
    ParsedChunk,
    Reader,
    opening_lines,
    record_ends,
)

DEFAULT_CHUNK_BYTES = 8 << 20
REJECTED_TAG = "rejected"
#: Files whose records straddle chunks, read by one worker each.
SERIAL_TAG = "serial"
_READ_AHEAD = 1 << 16


def plan_chunks(reader: Reader, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[Chunk]:
    """Cuts the reader's files into byte-range chunks (driver side, sizes only).

    Args:
        reader: Reader, the dataset layout (its `data_files`).
        chunk_bytes: int, the size of the byte ranges.

    Returns:
        list of `Chunk`; a compressed file is one chunk with `end = -1`.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> reader = make_reader("synthetic", output_dir=tempfile.mkdtemp(), rows=100)
        >>> [(c.start, c.end, c.skip_header) for c in plan_chunks(reader, chunk_bytes=2000)]
        [(0, 2000, True), (2000, 3836, False)]
    """
    chunks = []
    for path, has_header in reader.data_files():
        size = FileSystems.match([path])[0].metadata_list[0].size_in_bytes
        if CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED:
            chunks.append(Chunk(path, 0, -1, has_header))
            continue
        for start in range(0, max(size, 1), chunk_bytes):
            end = min(start + chunk_bytes, size)
            chunks.append(Chunk(path, start, end, has_header and start == 0, end >= size))
    return chunks


def read_chunk(chunk: Chunk) -> bytes:
    """The bytes of the whole lines of `chunk.path` that start in [start, end).

    Args:
        chunk: Chunk, a byte range of a file (`plan_chunks`).

    Returns:
        bytes, whole lines, the header line dropped when `chunk.skip_header`.

    Examples:

        >>> import tempfile
        >>> from keras_dimsel.data import make_reader
        >>> reader = make_reader("synthetic", output_dir=tempfile.mkdtemp(), rows=100)
        >>> chunks = plan_chunks(reader, chunk_bytes=2000)
        >>> [read_chunk(chunk).count(b"\\n") for chunk in chunks]  # 100 rows, each read once
        [52, 48]
        >>> read_chunk(chunks[1])[:40]  # starts at the first line that starts after byte 2000
        b'0,u705,i443,c31,d4,h2317,m105,l1,20.36\\n0'
    """
    if chunk.end < 0:
        with FileSystems.open(chunk.path) as f:
            data = f.read()
        return _drop_header(data) if chunk.skip_header else data
    with FileSystems.open(chunk.path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        position = max(chunk.start - 1, 0)
        f.seek(position)
        data = f.read(chunk.end - position)
        if chunk.start > 0:
            # The byte before `start` tells whether a line starts exactly at `start`.
            newline = data.find(b"\n")
            if newline < 0:
                return b""
            data = data[newline + 1 :]
            if not data:
                return b""
        while not data.endswith(b"\n"):
            more = f.read(_READ_AHEAD)
            if not more:
                break
            newline = more.find(b"\n")
            data += more if newline < 0 else more[: newline + 1]
    return _drop_header(data) if chunk.skip_header else data


def _drop_header(data: bytes) -> bytes:
    newline = data.find(b"\n")
    return b"" if newline < 0 else data[newline + 1 :]


def _line_starts(data: bytes) -> np.ndarray:
    """The byte offset of each line of whole-line `data`."""
    newlines = np.flatnonzero(np.frombuffer(data, np.uint8) == ord("\n"))
    starts = np.concatenate([[0], newlines + 1])
    return starts[starts < len(data)]


def _text_lines(data: bytes) -> pa.Array:
    """The lines of whole-line `data` as the readers see them: UTF-8 (other bytes
    read as U+FFFD, never a line break), a byte order mark at a line start dropped."""
    bom = UTF8_BOM.decode("utf-8")
    text = data.decode("utf-8", errors="replace").removeprefix(bom).replace("\n" + bom, "\n")
    lines = text.split("\n")
    return pa.array(lines[:-1] if lines and not lines[-1] else lines, pa.string())


def _open_record(data: bytes, delimiter: str) -> Optional[int]:
    """Where a record that may go on after whole-line `data` starts, or None.

    Such a record starts in the last `MAX_RECORD_LINES` lines, at a line that
    opens a quoted value and does not close it (`record_ends`); data without
    such a line is settled from its last lines alone.

    Returns:
        int, the byte offset of the record's first line, or None.
    """
    starts = _line_starts(data)
    tail = starts[-MAX_RECORD_LINES:]
    if not len(tail) or b'"' not in data[tail[0] :]:
        return None
    if not opening_lines(_text_lines(data[tail[0] :]), delimiter).any():
        return None
    _, unclosed = record_ends(_text_lines(data), delimiter)
    open_lines = np.flatnonzero(unclosed[-MAX_RECORD_LINES:])
    return int(tail[open_lines[0]]) if len(open_lines) else None


def _lines_after(chunk: Chunk, count: int) -> bytes:
    """Up to `count` lines of the file that start at or after `chunk.end`."""
    size, file_size = _READ_AHEAD, _file_size(chunk.path)
    while True:
        data = read_chunk(Chunk(chunk.path, chunk.end, chunk.end + size))
        starts = _line_starts(data)
        if len(starts) > count:
            return data[: starts[count]]
        if chunk.end + size >= file_size:
            return data
        size *= 4


def _file_size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def runs_past_end(chunk: Chunk, data: bytes, delimiter: str) -> bool:
    """Whether a record that starts in `chunk` (its lines `data`) ends after it.

    Args:
        chunk: Chunk, a byte range of a file whose quoted values may hold
            line breaks.
        data: bytes, the chunk's lines (`read_chunk`).
        delimiter: str, the file's delimiter.

    Returns:
        bool; always False for a chunk that ends its file.

    Examples:

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.csv")
        >>> with open(path, "wb") as f:
        ...     _ = f.write(b'1,plain\\n1,"two\\nlines"\\n0,end\\n')
        >>> chunk = Chunk(path, 0, 12, last=False)  # ends inside the quoted value
        >>> read_chunk(chunk)
        b'1,plain\\n1,"two\\n'
        >>> runs_past_end(chunk, read_chunk(chunk), ",")
        True
    """
    if chunk.last or _open_record(data, delimiter) is None:
        return False
    count = len(_line_starts(data))
    end, _ = record_ends(_text_lines(data + _lines_after(chunk, MAX_RECORD_LINES)), delimiter)
    return bool((end[:count] >= count).any())


class _ParseChunk(beam.DoFn):
    """Parses one chunk, or hands its file over to `_ParseFileSerially` (`SERIAL_TAG`)."""

    def __init__(self, reader: Reader):
        self._reader = reader

    def process(self, element: tuple[int, Chunk]) -> Iterator:
        index, chunk = element
        data = read_chunk(chunk)
        delimiter = self._reader.quoted_delimiter(chunk.path)
        if delimiter is not None and runs_past_end(chunk, data, delimiter):
            yield beam.pvalue.TaggedOutput(SERIAL_TAG, chunk.path)
            return
        yield from _outputs(index, self._reader.parse(data, chunk.source))


def _outputs(index: int, parsed: ParsedChunk) -> Iterator:
    if parsed.rejected:
        yield beam.pvalue.TaggedOutput(REJECTED_TAG, (index, parsed.rejected))
    if parsed.batch.num_rows:
        yield index, parsed


class _ParseFileSerially(beam.DoFn):
    """Parses the chunks of one file in order, carrying a record still open at the
    end of a chunk over to the next; the outputs keep the chunks' indices."""

    def __init__(self, reader: Reader, chunks: dict[str, list[tuple[int, Chunk]]]):
        self._reader = reader
        self._chunks = chunks

    def process(self, path: str) -> Iterator:
        delimiter = self._reader.quoted_delimiter(path)
        carried = b""
        for index, chunk in self._chunks[path]:
            data, carried = carried + read_chunk(chunk), b""
            start = None if chunk.last else _open_record(data, delimiter)
            if start is not None:
                # The record may close in the next chunk: hold it back, with the lines after it.
                data, carried = data[:start], data[start:]
            yield from _outputs(index, self._reader.parse(data, chunk.source))


class ReadRows(beam.PTransform):
    """Reads and parses the reader's files into `(chunk index, ParsedChunk)` pairs.

    The output is a dict: `rows`, the `(chunk index, ParsedChunk)` pairs, and
    `rejected`, the rejected rows as `(chunk index, [Rejection, ...])`.

    Args:
        reader: Reader, the dataset layout.
        chunk_bytes: int, the size of the byte ranges the files are cut into.

    Examples:

        >>> import tempfile
        >>> import apache_beam as beam
        >>> from keras_dimsel.data import make_reader
        >>> reader = make_reader("synthetic", output_dir=tempfile.mkdtemp(), rows=100)
        >>> with beam.Pipeline() as pipeline:
        ...     read = pipeline | ReadRows(reader, chunk_bytes=2000)
        ...     _ = (
        ...         read["rows"]
        ...         | "Rows" >> beam.MapTuple(lambda index, parsed: parsed.batch.num_rows)
        ...         | beam.CombineGlobally(sum)
        ...         | "Print" >> beam.Map(print)
        ...     )
        100
    """

    def __init__(self, reader: Reader, chunk_bytes: int = DEFAULT_CHUNK_BYTES):
        super().__init__()
        self._reader = reader
        self._chunk_bytes = chunk_bytes

    def expand(self, pipeline):
        chunks = list(enumerate(plan_chunks(self._reader, self._chunk_bytes)))
        parsed = (
            pipeline
            | "CreateChunks" >> beam.Create(chunks)
            | "SpreadChunks" >> beam.Reshuffle()
            | "ParseChunks"
            >> beam.ParDo(_ParseChunk(self._reader)).with_outputs(
                REJECTED_TAG, SERIAL_TAG, main="rows"
            )
        )
        serial_files = parsed[SERIAL_TAG] | "SerialFiles" >> beam.Distinct()
        paths = {index: chunk.path for index, chunk in chunks}
        by_file: dict[str, list] = {}
        for index, chunk in chunks:
            by_file.setdefault(chunk.path, []).append((index, chunk))
        serial = serial_files | "ParseFilesSerially" >> beam.ParDo(
            _ParseFileSerially(self._reader, by_file)
        ).with_outputs(REJECTED_TAG, main="rows")
        outputs = {}
        for tag in ("rows", REJECTED_TAG):
            kept = parsed[tag] | f"DropSerialFiles_{tag}" >> beam.Filter(
                lambda element, serial: paths[element[0]] not in serial,
                serial=beam.pvalue.AsList(serial_files),
            )
            outputs[tag] = (kept, serial[tag]) | f"Merge_{tag}" >> beam.Flatten()
        return outputs


__all__ = ["ReadRows", "ParsedChunk", "plan_chunks", "read_chunk", "runs_past_end"]
