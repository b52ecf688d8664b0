# lmdbpages.py FILE TABLE SEED: write 64 random bytes over the node offsets
# (just past the page header) of every leaf page of the state store's table
# TABLE in the LMDB file FILE; print how many pages. It reads the newest
# meta page, finds the table's root in the main database and walks its
# branch pages (LMDB's 64-bit page layout: a 16-byte header, then the
# 16-bit offsets of the nodes).
import random
import struct
import sys

PS = 4096
P_BRANCH, P_LEAF = 0x01, 0x02


def page(data, pg):
    return data[pg * PS:(pg + 1) * PS]


def node_offsets(b):
    lower = struct.unpack_from("<H", b, 12)[0]
    return [struct.unpack_from("<H", b, 16 + 2 * i)[0] for i in range((lower - 16) // 2)]


def leaves(data, root):
    out, todo = [], [root]
    while todo:
        pg = todo.pop()
        b = page(data, pg)
        flags = struct.unpack_from("<H", b, 10)[0]
        if flags & P_BRANCH:
            for off in node_offsets(b):
                lo, hi, fl = struct.unpack_from("<HHH", b, off)
                todo.append(lo | hi << 16 | fl << 32)
        elif flags & P_LEAF:
            out.append(pg)
    return out


def table_root(data, name):
    # MDB_meta after the page header: magic and version (4 bytes each),
    # address and mapsize (8), dbs[FREE] at 24 and dbs[MAIN] at 72 (48 bytes
    # each, md_root at 40), last_pg at 120, txnid at 128
    metas = []
    for m in (0, 1):
        b = page(data, m)
        metas.append((struct.unpack_from("<Q", b, 16 + 128)[0],
                      struct.unpack_from("<Q", b, 16 + 72 + 40)[0]))
    main = max(metas)[1]
    for leaf in leaves(data, main):
        b = page(data, leaf)
        for off in node_offsets(b):
            ks = struct.unpack_from("<H", b, off + 6)[0]
            if b[off + 8:off + 8 + ks] == name.encode():
                return struct.unpack_from("<Q", b, off + 8 + ks + 40)[0]
    sys.exit(f"no table {name}")


path, table, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(path, "rb") as f:
    data = f.read()
pages = leaves(data, table_root(data, table))
rnd = random.Random(seed)
with open(path, "r+b") as f:
    for pg in pages:
        f.seek(pg * PS + 16)
        f.write(rnd.randbytes(64))
print(len(pages))
