"""Unpacked layers, one directory per chain ID, shared by every image that has them."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dockerbank import faults
from dockerbank.errors import CorruptData, NotFound
from dockerbank.host.fs import flocked_dir
from dockerbank.image import compression
from dockerbank.oci import digest as dg
from dockerbank.state.db import Database

TYPE_CHECKING = False  # typing stays unimported at run time (CLI start-up)
if TYPE_CHECKING:  # the unpacker is imported when a layer is unpacked, not by every command
    from dockerbank.streams import Reader

    from dockerbank.image.unpack import IdMapping


@dataclass(frozen=True)
class Layer:
    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    tar_size: int


class _HashingReader:
    """Pass reads through while hashing them, so the diff ID is computed during unpacking."""

    def __init__(self, inner: Reader, verifier: dg.Verifier):
        self.inner = inner
        self.verifier = verifier

    def read(self, size: int = -1) -> bytes:
        try:
            data = self.inner.read(size)
        except (OSError, EOFError, ValueError) as exc:
            raise CorruptData(f"corrupt layer stream: {exc}") from exc
        self.verifier.update(data)
        return data

    def drain(self) -> None:
        while self.read(1 << 20):
            pass


class LayerStore:
    """``layers/<chain-hex>/diff`` directories plus their rows in the database."""

    def __init__(self, layers_dir: Path, tmp_dir: Path, db: Database, idmap: IdMapping | None = None):
        self.dir = layers_dir
        self.tmp_dir = tmp_dir
        self.db = db
        self.idmap = idmap  # None: the identity mapping (resolved when a layer is unpacked)

    def diff_dir(self, chain_id: str) -> Path:
        return self.dir / dg.hex_of(chain_id) / "diff"

    def get(self, chain_id: str) -> Layer:
        row = self.db.query_one("SELECT * FROM layers WHERE chain_id = ?", (chain_id,))
        if row is None:
            raise NotFound(f"layer {chain_id} not found")
        return Layer(row["chain_id"], row["diff_id"], row["parent"], row["size"], row["tar_size"])

    def has(self, chain_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM layers WHERE chain_id = ?", (chain_id,)) is not None

    def chain(self, top_chain: str | None) -> list[Layer]:
        """The layers of a stack, bottom first."""
        layers: list[Layer] = []
        current = top_chain
        while current:
            layer = self.get(current)
            layers.append(layer)
            current = layer.parent
        return list(reversed(layers))

    def lower_dirs(self, top_chain: str | None) -> list[Path]:
        """overlayfs lowerdir order: top layer first."""
        return [self.diff_dir(layer.chain_id) for layer in reversed(self.chain(top_chain))]

    def add(self, parent: str | None, stream: Reader, expected_diff_id: str | None = None) -> Layer:
        """Unpack a (possibly compressed) layer tar on top of ``parent``; reuse it if already present.

        The tar is unpacked into a temporary directory and renamed into place only after its
        diff ID is verified, so a broken stream leaves nothing behind.
        """
        if expected_diff_id:
            chain_id = self._chain_of(parent, expected_diff_id)
            if self.has(chain_id):
                return self.get(chain_id)
        reader, _kind = compression.open_decompressed(stream)
        verifier = dg.Verifier(expected_diff_id)
        hashing = _HashingReader(reader, verifier)
        self.dir.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.dir))
        try:
            (work / "diff").mkdir()
            from dockerbank.image.unpack import IDENTITY, unpack_layer

            size = unpack_layer(hashing, work / "diff", IDENTITY if self.idmap is None else self.idmap)
            hashing.drain()
            diff_id = verifier.check()
            chain_id = self._chain_of(parent, diff_id)
            layer = Layer(chain_id, diff_id, parent, size, verifier.size)
            # One commit at a time: two adders of the same layer (pulls, loads, the pods of one
            # kube play making the pause image) unpack side by side, and the second one must
            # find the first one's layer whole and recorded, never a directory it may remove.
            with flocked_dir(self.dir):
                if self.has(chain_id):
                    return self.get(chain_id)
                final = self.dir / dg.hex_of(chain_id)
                if final.exists():  # left by a crash before its row was written (under this lock: no adder's)
                    shutil.rmtree(final)
                faults.point("layer.unpacked")
                os.rename(work, final)
                faults.point("layer.moved")
                with self.db.write() as conn:
                    conn.execute(
                        "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, tar_size) VALUES (?,?,?,?,?)",
                        (chain_id, diff_id, parent, size, verifier.size),
                    )
            return layer
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)

    def remove(self, chain_id: str) -> None:
        """Delete a layer's row and directory (the caller checks nothing uses it)."""
        with self.db.write() as conn:
            conn.execute("DELETE FROM layers WHERE chain_id = ?", (chain_id,))
        path = self.dir / dg.hex_of(chain_id)
        if path.exists():
            doomed = self.dir / f".rm-{dg.hex_of(chain_id)}"
            os.rename(path, doomed)
            shutil.rmtree(doomed, ignore_errors=True)

    @staticmethod
    def _chain_of(parent: str | None, diff_id: str) -> str:
        if parent is None:
            return dg.validate(diff_id)
        return dg.of_bytes(f"{parent} {diff_id}".encode())

