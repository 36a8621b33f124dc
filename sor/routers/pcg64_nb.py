"""NumPy's PCG64 generator and its bounded integers, compiled: the solver's draws without Python.

The reference solver (`sor.routers.cont_kukanov.solve`) picks the outflow sample of each
stochastic-approximation step with `np.random.default_rng(seed).integers(0, count, size=n)`.
`seed_state_into` and `bounded_draws_into` give the same numbers inside compiled code, by
NumPy's own algorithms:

- seeding: SeedSequence hashes the seed's 32-bit words into a pool of four and draws four 64-bit
  words from it, the PCG64 state and increment (`seeded_state` reads them from NumPy);
- PCG64: a 128-bit linear congruential state, `state = state * MULTIPLIER + inc` (mod 2**128),
  whose 64-bit output is the XSL-RR permutation, `rotr64(high ^ low, high >> 58)`;
- 32-bit outputs taken two per 64-bit word, the low half first;
- `integers(0, count)` with count <= 2**32: Lemire's multiply-and-shift with rejection of the
  biased low products (`buffered_bounded_lemire_uint32` in NumPy's distributions.c); count 1
  draws nothing and gives zeros.

Numba has no 128-bit integers, so the state is kept as four uint64 words (high and low halves of
the state and of the increment) and the product's high half is built from 32-bit pieces. Tests
compare the states and the draws with NumPy's for many seeds, counts and lengths.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["bounded_draws_into", "seed_state_into", "seeded_state"]

_MULT_HI = np.uint64(0x2360ED051FC65DA4)
_MULT_LO = np.uint64(0x4385DF649FCCF645)
_LOW32 = np.uint64(0xFFFFFFFF)
_U32 = np.uint64(32)
_U58 = np.uint64(58)
_U63 = np.uint64(63)
_U64 = np.uint64(64)
_ZERO = np.uint64(0)
_ONE = np.uint64(1)

# NumPy's SeedSequence (numpy/random/bit_generator.pyx): a pool of 4 uint32 words, hash and mix
# constants, all arithmetic modulo 2**32.
_POOL = 4
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_MULT_L = np.uint64(0xCA01F9DD)
_MIX_MULT_R = np.uint64(0x4973F715)
_XSHIFT = np.uint64(16)


def seeded_state(seed: int) -> np.ndarray:
    """uint64[4]: (state high, state low, increment high, increment low) of `PCG64(seed)`, read
    from NumPy (the reference `seed_state_into` is compared with)."""
    fresh = np.random.PCG64(seed).state["state"]
    words = []
    for value in (int(fresh["state"]), int(fresh["inc"])):
        words += [value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF]
    return np.array(words, dtype=np.uint64)


@njit(cache=True, inline="always")
def _hashmix(value: np.uint64, hash_const: np.ndarray) -> np.uint64:
    """SeedSequence's hashmix; `hash_const` (uint64[1]) advances in place."""
    value = value ^ hash_const[0]
    hash_const[0] = (hash_const[0] * _MULT_A) & _LOW32
    value = (value * hash_const[0]) & _LOW32
    out: np.uint64 = value ^ (value >> _XSHIFT)
    return out


@njit(cache=True, inline="always")
def _mix(x: np.uint64, y: np.uint64) -> np.uint64:
    result = (_MIX_MULT_L * x - _MIX_MULT_R * y) & _LOW32
    out: np.uint64 = result ^ (result >> _XSHIFT)
    return out


@njit(cache=True)
def seed_state_into(seed: int, out: np.ndarray) -> None:
    """`out` (uint64[4]) = `seeded_state(seed)`, computed: SeedSequence's pool from the seed's
    32-bit words, its four uint64 outputs, and PCG64's seeding; 0 <= seed < 2**63."""
    entropy = np.zeros(2, dtype=np.uint64)
    value = np.uint64(seed)
    entropy[0] = value & _LOW32
    entropy[1] = value >> _U32
    n_entropy = 2 if entropy[1] != _ZERO else 1
    pool = np.zeros(_POOL, dtype=np.uint64)
    hash_const = np.array([_INIT_A], dtype=np.uint64)
    for i in range(_POOL):
        pool[i] = _hashmix(entropy[i] if i < n_entropy else _ZERO, hash_const)
    for i_src in range(_POOL):
        for i_dst in range(_POOL):
            if i_src != i_dst:
                pool[i_dst] = _mix(pool[i_dst], _hashmix(pool[i_src], hash_const))
    # generate_state(4, uint64): eight 32-bit words, paired little-endian into four
    words = np.zeros(8, dtype=np.uint64)
    hash_b = _INIT_B
    for i in range(8):
        data = pool[i % _POOL] ^ hash_b
        hash_b = (hash_b * _MULT_B) & _LOW32
        data = (data * hash_b) & _LOW32
        words[i] = data ^ (data >> _XSHIFT)
    seed_hi = words[0] | (words[1] << _U32)
    seed_lo = words[2] | (words[3] << _U32)
    inc_hi = words[4] | (words[5] << _U32)
    inc_lo = words[6] | (words[7] << _U32)
    # pcg64_set_seed: state 0, inc = (initseq << 1) | 1, step, state += initstate, step
    out[2] = (inc_hi << _ONE) | (inc_lo >> _U63)
    out[3] = (inc_lo << _ONE) | _ONE
    out[0], out[1] = _ZERO, _ZERO
    _next64(out)
    low = out[1] + seed_lo
    out[0] = out[0] + seed_hi + (_ONE if low < out[1] else _ZERO)
    out[1] = low
    _next64(out)


@njit(cache=True, inline="always")
def _mul_high(a: np.uint64, b: np.uint64) -> np.uint64:
    """The high 64 bits of the 128-bit product a * b."""
    a_lo, a_hi = a & _LOW32, a >> _U32
    b_lo, b_hi = b & _LOW32, b >> _U32
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    cross = (lo_lo >> _U32) + (hi_lo & _LOW32) + lo_hi
    high: np.uint64 = a_hi * b_hi + (hi_lo >> _U32) + (cross >> _U32)
    return high


@njit(cache=True, inline="always")
def _next64(words: np.ndarray) -> np.uint64:
    """Step the state in `words` (uint64[4], in place) and return its 64-bit output."""
    hi, lo = words[0], words[1]
    new_lo = lo * _MULT_LO
    new_hi = hi * _MULT_LO + lo * _MULT_HI + _mul_high(lo, _MULT_LO)
    low_sum = new_lo + words[3]
    carry = _ONE if low_sum < new_lo else _ZERO
    hi = new_hi + words[2] + carry
    lo = low_sum
    words[0], words[1] = hi, lo
    x = hi ^ lo
    rot = hi >> _U58
    out: np.uint64 = x
    if rot != _ZERO:  # a shift by 64 is undefined
        out = (x >> rot) | (x << (_U64 - rot))
    return out


@njit(cache=True)
def bounded_draws_into(state: np.ndarray, count: int, out: np.ndarray) -> None:
    """`out[:] = np.random.default_rng(seed).integers(0, count, size=len(out))`, where `state`
    is the seed's state (`seed_state_into`, left unchanged); 1 <= count <= 2**32."""
    words = state.copy()
    rng = np.uint64(count - 1)
    if rng == _ZERO:
        for i in range(len(out)):
            out[i] = 0
        return
    excl = rng + _ONE
    threshold = (_LOW32 - rng) % excl
    has_half = False
    half = _ZERO
    for i in range(len(out)):
        while True:
            if has_half:
                next32 = half
                has_half = False
            else:
                word = _next64(words)
                half = word >> _U32
                has_half = True
                next32 = word & _LOW32
            product = next32 * excl
            if (product & _LOW32) >= threshold:
                break
        out[i] = np.int64(product >> _U32)
