"""Process-wide runtime settings: torch / OpenCV / BLAS thread counts.

On small machines the number of intra-op threads matters a great deal: on a 2-core machine
PyTorch with 2 threads made small element-wise ops much slower than with 1 (OpenMP
synchronisation), and the pipeline already runs decoding, inference and the sinks on separate
threads. `benchmarks/pipeline.py` measures both settings; the default below follows it.
"""

from __future__ import annotations

import os

__all__ = ["available_cores", "configure_threads", "default_threads"]

# Cores left to the decode and sink threads before torch gets the rest.
RESERVED_CORES = 1
# Past this, more intra-op threads rarely help per-frame inference.
MAX_DEFAULT_THREADS = 8


def available_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_threads() -> int:
    """torch intra-op threads used when the config says 0: cores minus one, 1 to 8."""
    return max(1, min(MAX_DEFAULT_THREADS, available_cores() - RESERVED_CORES))


def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads (0 = `default_threads()`); returns the number set.

    OpenCV's own thread pool and the BLAS libraries loaded so far (NumPy's, SciPy's, OpenCV's
    OpenBLAS) are limited to the same number, so that none of them oversubscribes the cores.
    """
    if threads < 0:
        raise ValueError(f"threads is {threads}; expected >= 0")
    import cv2  # here, not at the top: the process that only plans work (batch) never loads torch
    import torch
    from threadpoolctl import threadpool_limits

    n = threads or default_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    cv2.setNumThreads(n)
    threadpool_limits(limits=n, user_api="blas")
    return n
