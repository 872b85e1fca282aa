"""Fixtures shared by the test modules."""
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
    a GPU to the CPU. Entered inside ``fake_cuda`` it sees
    the ops before the fake mode runs them, the failing one included.
    """

    def __init__(self):
        super().__init__()
        self.ops = []
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket).split('.')[-1]
        leaves = torch.utils._pytree.tree_leaves((args, kwargs or {}))
        devices = {t.device.type for t in leaves if isinstance(t, torch.Tensor)}
        self.ops.append(name)
        self.calls.append((name, devices))
        out = func(*args, **(kwargs or {}))
        if name in ('_to_copy', 'copy_') and 'cuda' in devices and all(
                t.device.type == 'cpu'
                for t in torch.utils._pytree.tree_leaves(out)
                if isinstance(t, torch.Tensor)):
            self.host_copies += 1
        return out

    host_copies = 0  # device-to-host copies seen


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
