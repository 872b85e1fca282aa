"""Fixtures shared by the test modules."""
import pytest
import torch


@pytest.fixture
def one_thread():
    """Run a test with one torch thread, then restore the count.

    On a shared 2-core machine the spinning OpenMP threads of concurrent
    processes make a training step about 10x slower; one thread is steady.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
