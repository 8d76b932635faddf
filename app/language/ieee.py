"""float64 as XLA computes it on CPU, for the NumPy side: subnormals flushed, integer powers.

XLA's CPU client runs every computation with the processor's flush-to-zero and
denormals-are-zero modes on (``tsl::port::ScopedFlushDenormal`` around each execution; no
flag turns it off: ``--xla_cpu_ftz=false`` only changes what LLVM may assume, and
``--xla_cpu_enable_fast_math`` is about other things). Every operation reads a subnormal
input as 0 and writes a subnormal result as 0, sign kept. The first tier computes in NumPy,
which keeps subnormals; it flushes each result with ``flush`` so that both tiers give the
same numbers (``docs/numerics.md``). The catalog's jet rules use ``integer_power``, as the
JAX rules they mirror use ``lax.integer_pow``.
"""

from __future__ import annotations

import math

import numpy as np

Arr = np.ndarray
#: The smallest normal float64 (2**-1022): a nonzero number below it is subnormal.
SMALLEST_NORMAL = float(np.finfo(np.float64).tiny)


def flush(x: Arr) -> Arr:
    """``x`` with subnormal entries made zero, sign kept, as XLA on CPU computes."""
    small = np.abs(x) < SMALLEST_NORMAL
    if not small.any():
        return x
    small &= x != 0
    return np.where(small, x * 0.0, x) if small.any() else x


def integer_power(x: Arr, k: int) -> Arr:
    """x**k as XLA computes it (``lax.integer_pow``): repeated squaring, each product
    flushed, then one reciprocal for a negative k."""
    n, result, square = abs(k), None, x
    while n:
        if n & 1:
            result = square if result is None else flush(result * square)
        n >>= 1
        if n:
            square = flush(square * square)
    if result is None:
        return np.ones_like(x)
    return flush(1.0 / result) if k < 0 else result


def flush_number(x: float) -> float:
    """A constant as XLA on CPU reads it: a subnormal is 0, sign kept."""
    return math.copysign(0.0, x) if 0 < abs(x) < SMALLEST_NORMAL else x
