"""Elligator 2 for X25519, with the "dirty" keys current obfs4 clients send.

obfs4 hides its ephemeral keys by sending the Elligator 2 *representative* of each key instead of
the key: 32 bytes that look uniformly random. Three details make a representative look like the
ones real clients send, so that a censor that blocks obfs4 blocks the probe exactly as it blocks
a user:

* the public key is "dirty": the clean X25519 key plus a random point of the curve's order-8
  subgroup. Clean keys all lie in the prime-order subgroup, which a censor can test by decoding
  the representative and multiplying by the group order; X25519 clamps every scalar to a
  multiple of 8, so the peer's shared secret is unchanged;
* each key has two preimages under the map; one is chosen at random;
* the map's output has 254 bits, and the top two bits are filled at random.

The arithmetic is on Python integers modulo p = 2^255 - 19. Only public values (public keys and
representatives) pass through it: the secret scalar multiplication is left to ``cryptography``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

P = 2**255 - 19
#: Curve25519 in Montgomery form: v^2 = u^3 + A u^2 + u.
A = 486662
#: edwards25519, birationally equivalent: -x^2 + y^2 = 1 + D x^2 y^2.
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

KEY_LENGTH = 32
REPRESENTATIVE_LENGTH = 32
_LOW_254_BITS = (1 << 254) - 1
#: About half of all keys have a representative: 128 tries fail with probability 2^-128.
_MAX_KEY_ATTEMPTS = 128


def _inverse(x: int) -> int:
    """1/x modulo p for x not divisible by p: Euclid's algorithm, many times faster than x^(p-2)."""
    return pow(x, -1, P)


def _is_square(x: int) -> bool:
    """Euler's criterion; zero counts as a square."""
    return pow(x, (P - 1) // 2, P) in (0, 1)


def _sqrt(x: int) -> int | None:
    """A square root of x modulo p, or None when x is not a square (p = 5 mod 8)."""
    x %= P
    root = pow(x, (P + 3) // 8, P)
    if root * root % P == x:
        return root
    root = root * SQRT_M1 % P
    if root * root % P == x:
        return root
    return None


def map_to_curve(r: int) -> int:
    """The Elligator 2 map (non-square 2): a field element to a Curve25519 u-coordinate."""
    w = -A * _inverse(1 + 2 * r * r) % P
    if _is_square(w * (w * w + A * w + 1)):
        return w
    return (-w - A) % P


def curve_to_representative(u: int, *, alternate: bool) -> int | None:
    """One of the two canonical (at most (p-1)/2) preimages of u under the map, if it has any.

    u has preimages exactly when -2u(u + A) is a non-zero square; their squares are
    -u / (2(u + A)) and -(u + A) / (2u), and ``alternate`` picks the second.
    """
    u %= P
    if u == 0 or (u + A) % P == 0:
        return None
    # Each ratio is -2u(u + A) divided by a square, so it has a root exactly when u has
    # preimages: trying the root answers both questions with one exponentiation.
    square = -(u + A) * _inverse(2 * u) if alternate else -u * _inverse(2 * (u + A))
    root = _sqrt(square)
    if root is None:
        return None
    return min(root, P - root)


def representative_to_public_key(representative: bytes) -> bytes:
    """The X25519 public key a 32-byte representative stands for (its top two bits are noise)."""
    if len(representative) != REPRESENTATIVE_LENGTH:
        raise ValueError(f"a representative is {REPRESENTATIVE_LENGTH} bytes")
    r = int.from_bytes(representative, "little") & _LOW_254_BITS
    return map_to_curve(r).to_bytes(KEY_LENGTH, "little")


# --- edwards25519 arithmetic, used only to add a low-order point to a public key --------------

_Point = tuple[int, int]  # affine (x, y) on edwards25519
_IDENTITY: _Point = (0, 1)


def _edwards_add(a: _Point, b: _Point) -> _Point:
    """Affine addition; complete on edwards25519 (a = -1 is a square, D is not)."""
    (x1, y1), (x2, y2) = a, b
    t = D * x1 * x2 * y1 * y2 % P
    x3 = (x1 * y2 + y1 * x2) * _inverse(1 + t) % P
    y3 = (y1 * y2 + x1 * x2) * _inverse(1 - t) % P
    return x3, y3


def _edwards_x(y: int) -> int | None:
    """An x with (x, y) on the curve (either sign will do for our use), or None."""
    return _sqrt((y * y - 1) * _inverse(D * y * y + 1))


def _order8_generator() -> _Point:
    # A point of order 8 doubles to one with y = 0, so y = ±sqrt(-1)·x; on the curve that
    # gives D x^4 - 2 x^2 - 1 = 0, i.e. x^2 = (1 ± sqrt(1 + D)) / D.
    root = _sqrt(1 + D)
    assert root is not None, "1 + d is a square for edwards25519"
    for x_squared in ((1 + root) * _inverse(D), (1 - root) * _inverse(D)):
        x = _sqrt(x_squared)
        if x is not None:
            return x, x * SQRT_M1 % P
    raise AssertionError("edwards25519 has points of order 8")


def _multiples(point: _Point, count: int) -> tuple[_Point, ...]:
    multiples = [_IDENTITY]
    for _ in range(count - 1):
        multiples.append(_edwards_add(multiples[-1], point))
    return tuple(multiples)


#: The order-8 subgroup: LOW_ORDER_POINTS[k] is k times a generator.
LOW_ORDER_POINTS = _multiples(_order8_generator(), 8)


def add_low_order_point(u: int, index: int) -> int:
    """u(P + T), where u = u(P) for a point P of large order and T = LOW_ORDER_POINTS[index].

    Which of ±P the u-coordinate stands for is unknown, so this may compute u(P - T) instead;
    u(-P + T) = u(P - T), and -T is as uniformly distributed over the subgroup as T.
    """
    y = (u - 1) * _inverse(u + 1) % P
    x = _edwards_x(y)
    if x is None:
        raise ValueError("not the u-coordinate of a curve point")
    _, y_sum = _edwards_add((x, y), LOW_ORDER_POINTS[index % 8])
    return (1 + y_sum) * _inverse(1 - y_sum) % P


@dataclass(frozen=True, slots=True)
class ElligatorKeypair:
    """An ephemeral X25519 key whose public half has a representative."""

    private_key: bytes = field(repr=False)
    public_key: bytes
    representative: bytes


def generate_keypair(random_bytes: Callable[[int], bytes] = os.urandom) -> ElligatorKeypair:
    """A fresh dirty keypair and a representative of its public key, as obfs4 clients make them."""
    for _ in range(_MAX_KEY_ATTEMPTS):
        private_key = random_bytes(KEY_LENGTH)
        # bits 0-2: which low-order point; bit 3: which preimage; bits 6-7: the padding bits.
        (tweak,) = random_bytes(1)
        clean = X25519PrivateKey.from_private_bytes(private_key).public_key().public_bytes_raw()
        u = add_low_order_point(int.from_bytes(clean, "little"), tweak & 7)
        r = curve_to_representative(u, alternate=bool(tweak & 8))
        if r is None:
            continue
        representative = r | (tweak >> 6) << 254
        return ElligatorKeypair(
            private_key=private_key,
            public_key=u.to_bytes(KEY_LENGTH, "little"),
            representative=representative.to_bytes(REPRESENTATIVE_LENGTH, "little"),
        )
    raise RuntimeError("no representable key found: the random source is broken")
