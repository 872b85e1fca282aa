"""Fixtures shared by the test modules."""
import traceback

import pytest
import torch

# The tests read the Runner's checkpoints with torch.load, as the tools do
# (tools import the fixes; `import mmtwoway` does not apply them).
import mmtwoway_stack_fixes  # noqa: F401,E402
from torch.utils._python_dispatch import TorchDispatchMode


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


@pytest.fixture
def fake_cuda():
    """A ``FakeTensorMode`` in which tensors live on ``cuda`` without a GPU.

    Inside it no kernel runs: ops only compute shapes, dtypes and devices.
    Reading a value on the host (``.item()``, ``bool(t)``, ``nonzero``) is
    impossible there and raises ``DataDependentOutputException`` /
    ``DynamicOutputShapeException``, and mixing devices raises as on a
    real GPU: so code that runs here has no host sync and no device mix.
    ``model.to('cuda')`` replaces the parameters (instead of assigning
    ``.data``, which fake tensors do not allow).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode
    overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            yield mode
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(overwrite)


class OpRecorder(TorchDispatchMode):
    """Records every aten op that runs inside it, with its devices.

    ``ops`` holds the op names in order, ``calls`` the pairs (name, device
    types of its tensor arguments), ``host_copies`` counts the copies from
    a GPU to the CPU and ``blocking_copies`` lists (``file:line`` of the
    Python caller) the copies from the CPU to a GPU made without
    ``non_blocking=True``: on CUDA such a copy is followed by a stream
    synchronise (``memcpy_and_sync``), a host wait. Entered inside
    ``fake_cuda`` it sees the ops before the fake mode runs them, the
    failing one included.

    Args:
        answer_reads (bool): Answer a host read of a scalar
            (``_local_scalar_dense``, what ``.item()`` runs) with zero
            instead of passing it on, where the fake mode would raise, so a
            whole step runs to its end; each read is listed in ``reads``
            (``file:line``) and counted among ``ops`` as a syncing op.
    """

    def __init__(self, answer_reads: bool = False):
        super().__init__()
        self.ops = []
        self.calls = []
        self.answer_reads = answer_reads
        self.reads = []
        self.blocking_copies = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket).split('.')[-1]
        leaves = torch.utils._pytree.tree_leaves((args, kwargs))
        devices = {t.device.type for t in leaves
                   if isinstance(t, torch.Tensor)}
        self.ops.append(name)
        self.calls.append((name, devices))
        if name == '_local_scalar_dense':
            self.reads.append(_caller())
            if self.answer_reads:
                dtype = args[0].dtype
                return (False if dtype == torch.bool else
                        0 if not dtype.is_floating_point else 0.)
        if name in ('_to_copy', 'copy_') and \
                self._is_blocking_upload(name, args, kwargs):
            self.blocking_copies.append(_caller())
        out = func(*args, **kwargs)
        if name in ('_to_copy', 'copy_') and 'cuda' in devices and all(
                t.device.type == 'cpu'
                for t in torch.utils._pytree.tree_leaves(out)
                if isinstance(t, torch.Tensor)):
            self.host_copies += 1
        return out

    @staticmethod
    def _is_blocking_upload(name, args, kwargs) -> bool:
        """A CPU -> CUDA copy without ``non_blocking=True``."""
        if name == '_to_copy':
            src, device = args[0], kwargs.get('device')
            non_blocking = kwargs.get('non_blocking', False)
            dst_cuda = device is not None and torch.device(device).type == \
                'cuda'
        else:  # copy_(self, src, non_blocking=False)
            dst, src = args[0], args[1]
            non_blocking = (args[2] if len(args) > 2 else
                            kwargs.get('non_blocking', False))
            dst_cuda = dst.device.type == 'cuda'
        return (isinstance(src, torch.Tensor) and src.device.type == 'cpu'
                and dst_cuda and not non_blocking)

    host_copies = 0  # device-to-host copies seen


def _caller() -> str:
    """``file:line`` of the innermost Python frame outside torch's
    dispatch machinery and this file: the code that asked for the op."""
    skip = ('conftest.py', '_python_dispatch.py', 'fake_tensor.py',
            '_tensor.py', 'contextlib.py', '_compile.py', '_ops.py',
            '_stats.py', 'eval_frame.py')
    for frame in reversed(traceback.extract_stack()[:-1]):
        if not frame.filename.endswith(skip):
            return f'{frame.filename}:{frame.lineno}'
    return '?'


# Ops that read a tensor's values on the host (or size their output by
# them): on a GPU each one waits for the device.
SYNCING_OPS = ('nonzero', '_local_scalar_dense', 'masked_select', 'item',
               'unique', '_unique2', 'equal', 'is_nonzero', 'tolist')


@pytest.fixture
def op_recorder():
    """The :class:`OpRecorder` class (enter an instance with ``with``)."""
    return OpRecorder


@pytest.fixture
def syncing_ops():
    """Names of the ops that read values on the host."""
    return SYNCING_OPS
