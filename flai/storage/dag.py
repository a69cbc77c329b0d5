"""The UnixFS file DAG that Kubo builds, computed in pure Python, and its verified reading.

Why: the embedded store must give a file the same CID a real IPFS node gives it, so content
named on chain by the embedded stack can later be served by any Kubo-compatible daemon, and
the other way round. This module reproduces exactly what
``ipfs add --cid-version=1 --raw-leaves --chunker=size-262144`` computes:

1. Cut the bytes into 256 KiB chunks (an empty file is one empty chunk).
2. Each chunk is a ``raw`` block; its CIDv1 is ``raw`` + sha2-256 of the chunk. A file of one
   chunk is that leaf alone (``bafkrei...``).
3. Otherwise group the nodes of a level, in order, into runs of at most 174 and give each run
   a parent: a ``dag-pb`` node whose links (Hash, Name "", Tsize = the bytes of the linked
   subtree's blocks) come first on the wire, then a UnixFS ``Data`` message (Type File,
   filesize, one blocksize per child). Repeat until one node is left: the root (``bafybei...``).
   This is Kubo's balanced layout: full left subtrees, depth growing only when needed.

The protobuf messages are declared once as descriptors and encoded by the ``protobuf``
library; dag-pb's canonical order (Links before Data, the reverse of field-number order) is
obtained by concatenating two encodings, which protobuf defines as a merge.

Example:
    >>> compute_cid(b"")
    'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    >>> dag = build_file_dag(bytes(CHUNK_SIZE + 1))
    >>> [str(b.cid)[:6] for b in dag.blocks], str(dag.root)[:6]
    (['bafkre', 'bafkre', 'bafybe'], 'bafybe')
    >>> read_file_dag(dag.root, {b.cid: b.data for b in dag.blocks}.__getitem__) == bytes(CHUNK_SIZE + 1)
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from multiformats import CID, multihash

from flai.storage.errors import StorageCidError, StorageIntegrityError

CHUNK_SIZE = 262_144  # Kubo's default chunker, size-262144
MAX_LINKS = 174  # Kubo's balanced layout: links per node
HASH = "sha2-256"
CODECS = ("raw", "dag-pb")


def _declare_messages() -> tuple[type, type]:
    """Declare dag-pb's PBNode/PBLink and UnixFS's Data (proto2, as in their .proto files)."""
    f = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(
        name="flai/storage/unixfs.proto", package="flai.unixfs", syntax="proto2"
    )
    link = proto.message_type.add(name="PBLink")
    link.field.add(name="Hash", number=1, type=f.TYPE_BYTES, label=f.LABEL_OPTIONAL)
    link.field.add(name="Name", number=2, type=f.TYPE_STRING, label=f.LABEL_OPTIONAL)
    link.field.add(name="Tsize", number=3, type=f.TYPE_UINT64, label=f.LABEL_OPTIONAL)
    node = proto.message_type.add(name="PBNode")
    node.field.add(name="Data", number=1, type=f.TYPE_BYTES, label=f.LABEL_OPTIONAL)
    node.field.add(
        name="Links", number=2, type=f.TYPE_MESSAGE, label=f.LABEL_REPEATED,
        type_name=".flai.unixfs.PBLink",
    )
    data = proto.message_type.add(name="Data")
    # Type is an enum in unixfs.proto (File = 2); on the wire an enum is a varint.
    data.field.add(name="Type", number=1, type=f.TYPE_UINT64, label=f.LABEL_REQUIRED)
    data.field.add(name="Data", number=2, type=f.TYPE_BYTES, label=f.LABEL_OPTIONAL)
    data.field.add(name="filesize", number=3, type=f.TYPE_UINT64, label=f.LABEL_OPTIONAL)
    data.field.add(name="blocksizes", number=4, type=f.TYPE_UINT64, label=f.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("flai.unixfs.PBNode")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("flai.unixfs.Data")),
    )


PBNode, UnixFSData = _declare_messages()
UNIXFS_FILE = 2


@dataclass(frozen=True)
class Block:
    """One stored block: its CID and the exact bytes that hash to it."""

    cid: CID
    data: bytes


@dataclass(frozen=True)
class FileDag:
    """A file as IPFS stores it: the root CID and every block, children before parents."""

    root: CID
    blocks: tuple[Block, ...]


@dataclass(frozen=True)
class _Child:
    cid: CID
    content_size: int  # file bytes under this node (UnixFS blocksize)
    tree_size: int  # bytes of all blocks of the subtree (dag-pb Tsize)


def parse_cid(text: str) -> CID:
    """A CID this store can handle (raw or dag-pb, sha2-256) as CIDv1 base32, or StorageCidError.

    Daemons answer in other spellings of the same CID (js-ipfs: base58btc ``zdj7...``; old
    Kubo: CIDv0 ``Qm...``); ``str`` of the result is the one spelling FLAI stores and compares.

    >>> str(parse_cid("zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW"))
    'bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
    """
    try:
        cid = CID.decode(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise StorageCidError(str(text), f"not a CID ({exc})") from exc
    if cid.codec.name not in CODECS:
        raise StorageCidError(text, f"codec {cid.codec.name} is not one of {CODECS}")
    if cid.hashfun.name != HASH:
        raise StorageCidError(text, f"hash {cid.hashfun.name} is not {HASH}")
    return cid.set(version=1, base="base32")


def _block(codec: str, data: bytes) -> Block:
    return Block(CID("base32", 1, codec, multihash.digest(data, HASH)), data)


def _parent(children: list[_Child]) -> tuple[Block, _Child]:
    unixfs = UnixFSData(
        Type=UNIXFS_FILE,
        filesize=sum(c.content_size for c in children),
        blocksizes=[c.content_size for c in children],
    )
    links = PBNode()
    for child in children:
        links.Links.add(Hash=bytes(child.cid), Name="", Tsize=child.tree_size)
    encoded = links.SerializeToString() + PBNode(Data=unixfs.SerializeToString()).SerializeToString()
    block = _block("dag-pb", encoded)
    tree_size = len(encoded) + sum(c.tree_size for c in children)
    return block, _Child(block.cid, unixfs.filesize, tree_size)


def build_file_dag(data: bytes) -> FileDag:
    """Every block of ``data`` as ``ipfs add --cid-version=1 --raw-leaves`` lays it out."""
    blocks: list[Block] = []
    level: list[_Child] = []
    for start in range(0, max(len(data), 1), CHUNK_SIZE):
        leaf = _block("raw", data[start : start + CHUNK_SIZE])
        blocks.append(leaf)
        level.append(_Child(leaf.cid, len(leaf.data), len(leaf.data)))
    while len(level) > 1:
        parents = [_parent(level[i : i + MAX_LINKS]) for i in range(0, len(level), MAX_LINKS)]
        blocks.extend(block for block, _ in parents)
        level = [child for _, child in parents]
    return FileDag(root=level[0].cid, blocks=tuple(blocks))


def compute_cid(data: bytes) -> str:
    """The CIDv1 (base32) Kubo gives ``data`` with raw leaves and 256 KiB chunks."""
    return str(build_file_dag(data).root)


def verify_block(root: CID, cid: CID, data: bytes) -> None:
    """Raise StorageIntegrityError unless ``data`` hashes to ``cid`` (part of ``root``)."""
    if multihash.digest(data, cid.hashfun) != cid.digest:
        raise StorageIntegrityError(str(root), str(cid), "block bytes do not hash to its CID")


def read_file_dag(root: CID, load: Callable[[CID], bytes]) -> bytes:
    """Reassemble a file from its blocks, checking every block's hash and every size.

    ``load`` returns a block's stored bytes (or raises); nothing unverified is returned.
    """
    parts: list[bytes] = []
    _read_node(root, root, load, parts)
    return b"".join(parts)


def _read_node(root: CID, cid: CID, load: Callable[[CID], bytes], parts: list[bytes]) -> int:
    if cid.codec.name not in CODECS or cid.hashfun.name != HASH:
        raise StorageIntegrityError(str(root), str(cid), f"unexpected link {cid.codec.name}")
    data = load(cid)
    verify_block(root, cid, data)
    if cid.codec.name == "raw":
        parts.append(data)
        return len(data)
    node, unixfs = PBNode(), UnixFSData()
    try:
        node.ParseFromString(data)
        unixfs.ParseFromString(node.Data)
    except DecodeError as exc:
        raise StorageIntegrityError(str(root), str(cid), f"not a UnixFS node ({exc})") from exc
    if unixfs.Type != UNIXFS_FILE or len(unixfs.blocksizes) != len(node.Links):
        raise StorageIntegrityError(str(root), str(cid), "not a UnixFS file node")
    parts.append(unixfs.Data)
    size = len(unixfs.Data)
    for link, expected in zip(node.Links, unixfs.blocksizes, strict=True):
        try:
            child = CID.decode(link.Hash).set(version=1, base="base32")
        except ValueError as exc:
            raise StorageIntegrityError(str(root), str(cid), f"bad link ({exc})") from exc
        got = _read_node(root, child, load, parts)
        if got != expected:
            raise StorageIntegrityError(str(root), str(cid), f"child holds {got} B, node says {expected}")
        size += got
    if unixfs.HasField("filesize") and unixfs.filesize != size:
        raise StorageIntegrityError(str(root), str(cid), f"file holds {size} B, node says {unixfs.filesize}")
    return size
