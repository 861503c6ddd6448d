"""The registry's Merkle tree against RFC 6962's reference vectors (the
Certificate Transparency implementations' test data), and every proof of
trees of size 1..N built here, each then broken by one byte."""

from __future__ import annotations

import hashlib

import pytest

from ivr.desk import merkle

# The CT reference leaves and the root of the first n of them (n = 0..8).
DATA = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
                                   "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = {  # (index, size): the reference audit path
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}
CONSISTENCY = {  # (first, second): the reference consistency proof
    (2, 8): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}
LEAVES = [merkle.leaf_hash(d) for d in DATA]


def test_the_roots_are_rfc_6962s() -> None:
    for n, want in enumerate(ROOTS):
        assert merkle.root(LEAVES[:n]).hex() == want


def test_the_hashes_carry_their_prefixes() -> None:
    assert merkle.leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert merkle.node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()


@pytest.mark.parametrize(("index", "size"), sorted(INCLUSION))
def test_inclusion_proofs_are_the_references(index: int, size: int) -> None:
    proof = merkle.inclusion_proof(index, LEAVES[:size])
    assert [p.hex() for p in proof] == INCLUSION[index, size]
    assert merkle.verify_inclusion(index, size, LEAVES[index], proof, bytes.fromhex(ROOTS[size]))


@pytest.mark.parametrize(("first", "second"), sorted(CONSISTENCY))
def test_consistency_proofs_are_the_references(first: int, second: int) -> None:
    proof = merkle.consistency_proof(first, LEAVES[:second])
    assert [p.hex() for p in proof] == CONSISTENCY[first, second]
    assert merkle.verify_consistency(first, second, bytes.fromhex(ROOTS[first]),
                                     bytes.fromhex(ROOTS[second]), proof)


def _flipped(proof: list[bytes], i: int) -> list[bytes]:
    broken = list(proof)
    broken[i] = bytes([broken[i][0] ^ 1]) + broken[i][1:]
    return broken


N = 33
MANY = [merkle.leaf_hash(i.to_bytes(2, "big")) for i in range(N)]


def test_every_inclusion_proof_verifies_and_fails_with_one_byte_changed() -> None:
    for n in range(1, N + 1):
        tree, r = MANY[:n], merkle.root(MANY[:n])
        for i in range(n):
            proof = merkle.inclusion_proof(i, tree)
            assert merkle.verify_inclusion(i, n, tree[i], proof, r), (i, n)
            other = MANY[(i + 1) % N] if n > 1 else merkle.leaf_hash(b"other")
            assert not merkle.verify_inclusion(i, n, other, proof, r), (i, n)
            for j in range(len(proof)):
                assert not merkle.verify_inclusion(i, n, tree[i], _flipped(proof, j), r), (i, n, j)
            if proof:
                assert not merkle.verify_inclusion(i, n, tree[i], proof[:-1], r)
            assert not merkle.verify_inclusion(i, n, tree[i], proof + [r], r)


def test_every_consistency_proof_verifies_and_fails_with_one_byte_changed() -> None:
    roots = [merkle.root(MANY[:n]) for n in range(N + 1)]
    for n in range(1, N + 1):
        for m in range(0, n + 1):
            proof = merkle.consistency_proof(m, MANY[:n])
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            for j in range(len(proof)):
                assert not merkle.verify_consistency(m, n, roots[m], roots[n],
                                                     _flipped(proof, j)), (m, n, j)
            if 0 < m < n:
                # another log of the same size: one leaf changed before m
                forged = merkle.root([merkle.leaf_hash(b"forged")] + MANY[1:m])
                assert not merkle.verify_consistency(m, n, forged, roots[n], proof), (m, n)
                assert not merkle.verify_consistency(n, m, roots[n], roots[m], proof)


def test_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError):
        merkle.inclusion_proof(3, MANY[:3])
    with pytest.raises(ValueError):
        merkle.consistency_proof(4, MANY[:3])
    assert not merkle.verify_inclusion(-1, 3, MANY[0], [], merkle.root(MANY[:3]))
    assert not merkle.verify_inclusion(0, 2, MANY[0], [b"short"], merkle.root(MANY[:2]))
