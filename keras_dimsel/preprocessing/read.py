"""`ReadRows`: input files to parsed record batches, on any Beam runner.

Files are cut into byte ranges on the driver (sizes only, nothing is read);
each worker reads the whole lines that *start* in its range, so a line that
straddles a boundary belongs to exactly one chunk. Compressed files cannot be
cut and are read as one chunk. All file access goes through Beam's
`FileSystems`, so `gs://`, `s3://` and local paths work alike.
"""

from __future__ import annotations

from typing import Iterator

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from keras_dimsel.data.reader import Chunk, ParsedChunk, Reader

DEFAULT_CHUNK_BYTES = 8 << 20
REJECTED_TAG = "rejected"
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
            chunks.append(Chunk(path, start, end, has_header and start == 0))
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


class _ParseChunk(beam.DoFn):
    def __init__(self, reader: Reader):
        self._reader = reader

    def process(self, element: tuple[int, Chunk]) -> Iterator:
        index, chunk = element
        parsed = self._reader.parse(read_chunk(chunk), chunk.source)
        if parsed.rejected:
            yield beam.pvalue.TaggedOutput(REJECTED_TAG, (index, parsed.rejected))
        if parsed.batch.num_rows:
            yield index, parsed


class ReadRows(beam.PTransform):
    """Reads and parses the reader's files into `(chunk index, ParsedChunk)` pairs.

    The rejected rows come out on the `rejected` tag as `(chunk index,
    [Rejection, ...])`.

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
        ...         read.rows
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
        return (
            pipeline
            | "CreateChunks" >> beam.Create(chunks)
            | "SpreadChunks" >> beam.Reshuffle()
            | "ParseChunks"
            >> beam.ParDo(_ParseChunk(self._reader)).with_outputs(REJECTED_TAG, main="rows")
        )


__all__ = ["ReadRows", "ParsedChunk", "plan_chunks", "read_chunk"]
