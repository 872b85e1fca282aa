"""One whole training iteration of ``configs/twoway_coco_r50.py`` on a fake
CUDA device: no host sync and no blocking host-to-device copy, in fp16
(mmengine's ``AmpOptimWrapper``, torch's dynamic ``GradScaler``) and with
``--bf16`` (the disabled scaler).

Each iteration is what ``EpochBasedTrainLoop.run_iter`` runs: the hooks
before it, ``model.train_step`` (the colour-augmenting data preprocessor,
ResNet-50, the two-way head, the scaler and the SGD step) and the hooks
after it (the config's and the check hooks of ``tools/train.py``).
"""
import os.path as osp
from contextlib import ExitStack
from unittest import mock

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import MODELS
from torch._subclasses.fake_tensor import FakeTensorMode

import mmtwoway  # noqa: F401  (registers everything)
from mmtwoway.models.data_preprocessors import ColorAugmentDataPreprocessor
from tools.misc.synthetic import write_coco_jpegs
from mmtwoway.utils.runtime import use_bf16

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BATCH, ITERS = 8, 2


@MODELS.register_module(force=True)
class ParentLabelCopy(ColorAugmentDataPreprocessor):
    """The preprocessor with mmpretrain's own label copy (the positive
    control: the label path of ``ClsDataPreprocessor``, unchanged)."""

    def labels_to_device(self, data_samples):
        pass


@pytest.fixture(scope='module')
def coco_root(tmp_path_factory):
    """A synthetic MS-COCO 2014 train split: 4 batches of small JPEGs."""
    root = tmp_path_factory.mktemp('coco')
    write_coco_jpegs(str(root), 4 * BATCH, 48, 40, split='train2014')
    return root


@pytest.fixture(scope='module', autouse=True)
def fused_sgd_shape_kernel():
    """A Meta kernel for ``aten::_fused_sgd_``, which torch lacks: it
    checks what the CUDA kernel requires (every tensor, the scaler's
    ``grad_scale`` and ``found_inf`` included, on the parameters' device)
    and, like it, returns nothing (the update is in place)."""
    lib = torch.library.Library('aten', 'IMPL')

    def fused_sgd_(params, grads, momentum_buffer_list, *, weight_decay,
                   momentum, lr, dampening, nesterov, maximize,
                   is_first_step, grad_scale=None, found_inf=None):
        device = params[0].device
        for t in [*grads, *momentum_buffer_list, grad_scale, found_inf]:
            assert t is None or t.device == device, (t.device, device)

    lib.impl('_fused_sgd_', fused_sgd_, 'Meta')
    yield
    lib._destroy()


def backward_stand_in(params):
    """``Tensor.backward`` for fake CUDA tensors: a gradient of each
    parameter's shape on its device, accumulated as autograd does.

    The autograd engine asks the CUDA driver for the device's streams, which
    a machine without a GPU does not have; what the backward pass of torch's
    kernels does on a GPU is queue device kernels (the loss's own backward
    is checked sync-free in ``test_losses.py``).
    """
    def backward(self, gradient=None, *args, **kwargs):
        assert self.device.type == 'cuda' and self.requires_grad
        for p in params:
            grad = torch.ones_like(p)
            p.grad = grad if p.grad is None else p.grad + grad
    return backward


def record_iterations(coco_root, work_dir, precision, recorder,
                      before_fix=False):
    """Run ``ITERS`` iterations on fake CUDA; return one recorder each.

    The Runner, its model and the batches are made on the CPU first (the
    conftest ``fake_cuda`` fixture would make them fake from the start);
    then the same fake mode as that fixture's moves the model to "cuda".
    """
    cfg = Config.fromfile(osp.join(ROOT, 'configs', 'twoway_coco_r50.py'))
    cfg.work_dir = str(work_dir)
    cfg.model.backbone.init_cfg = None  # no download
    cfg.model.head.loss.bucket_size = None  # the paper's 128 > BATCH
    cfg.train_dataloader.dataset.data_root = str(coco_root)
    cfg.train_dataloader.update(batch_size=BATCH, num_workers=0,
                                persistent_workers=False, pin_memory=False)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None
    cfg.test_dataloader = cfg.test_cfg = cfg.test_evaluator = None
    cfg.log_level = 'WARNING'
    # The check hooks tools/train.py runs with, unless the config has them.
    present = {h['type'] for h in cfg.get('custom_hooks') or []}
    cfg.custom_hooks = list(cfg.get('custom_hooks') or []) + [
        dict(type=name) for name in ('TrainSettingsHook', 'NonFiniteLossHook')
        if name not in present]
    if precision == 'bf16':
        use_bf16(cfg)
    if before_fix:
        cfg.data_preprocessor.type = 'ParentLabelCopy'
        cfg.optim_wrapper.optimizer.pop('fused')
    runner = Runner.from_cfg(cfg)
    loop = runner.train_loop
    batches = [b for _, b in zip(range(ITERS), loop.dataloader)]
    recorders = []
    model = runner.model
    # the dtype the first convolution computes in (autocast at work)
    conv = next(m for m in model.modules()
                if isinstance(m, torch.nn.Conv2d))
    runner.conv_dtypes = []
    conv.register_forward_hook(
        lambda m, i, out: runner.conv_dtypes.append(out.dtype))
    with ExitStack() as patches:
        future = torch.__future__
        patches.callback(
            future.set_overwrite_module_params_on_conversion,
            future.get_overwrite_module_params_on_conversion())
        future.set_overwrite_module_params_on_conversion(True)
        patches.enter_context(FakeTensorMode(allow_non_fake_inputs=True))
        model.to('cuda')  # fake: parameters and buffers become fake CUDA
        # The device queries of mmengine and torch, answered as on a GPU
        # machine (the fake mode has no driver to ask).
        with mock.patch('torch.cuda.is_available', return_value=True):
            runner.optim_wrapper = runner.build_optim_wrapper(
                runner.optim_wrapper)
        patches.enter_context(
            mock.patch('mmengine.runner.amp.get_device',
                       return_value='cuda'))
        patches.enter_context(
            mock.patch('torch.cuda.is_bf16_supported', return_value=True))
        patches.enter_context(  # torch.autocast's CUDA check
            mock.patch('torch.cuda.amp.common.amp_definitely_not_available',
                       return_value=False))
        patches.enter_context(
            mock.patch.object(torch.Tensor, 'backward',
                              backward_stand_in(list(model.parameters()))))
        runner.param_schedulers = runner.build_param_scheduler(
            runner.param_schedulers)
        runner.call_hook('before_train')
        runner.call_hook('before_train_epoch')
        for idx, batch in enumerate(batches):
            with recorder(answer_reads=True) as rec:
                loop.run_iter(idx, batch)
            recorders.append(rec)
            rec.label_devices = {s.gt_label.device.type
                                 for s in batch['data_samples']}
    return runner, recorders


def syncs(rec, syncing_ops):
    return [op for op in rec.ops if op in syncing_ops]


@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_whole_iteration_never_waits(coco_root, tmp_path, precision,
                                     op_recorder, syncing_ops):
    runner, recs = record_iterations(coco_root, tmp_path, precision,
                                     op_recorder)
    scaler = runner.optim_wrapper.loss_scaler
    assert scaler.is_enabled() == (precision == 'fp16')
    assert runner.conv_dtypes == [
        torch.float16 if precision == 'fp16' else torch.bfloat16] * ITERS
    assert runner.optim_wrapper.optimizer.defaults['fused']
    for rec in recs:
        ops = set(rec.ops)
        # the whole step ran: augmentation, convolutions, the update
        assert {'convolution', 'addcmul', '_fused_sgd_'} <= ops, ops
        if precision == 'fp16':
            assert '_amp_foreach_non_finite_check_and_unscale_' in ops
            assert '_amp_update_scale_' in ops
        assert syncs(rec, syncing_ops) == [], rec.reads
        assert rec.reads == []
        assert rec.blocking_copies == []
        assert rec.label_devices == {'cuda'}  # for the head's targets
    assert runner.train_loop.iter == ITERS


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['fp16', 'bf16'])
def test_recorder_sees_the_scaler_read_and_the_label_copy(
        coco_root, tmp_path, precision, op_recorder, syncing_ops):
    """Positive control: the non-fused SGD (the scaler reads its inf flag
    with ``.item()``) and mmpretrain's blocking label copy are found."""
    _, recs = record_iterations(coco_root, tmp_path, precision, op_recorder,
                                before_fix=True)
    for rec in recs:
        copies = [c.replace(osp.sep, '/') for c in rec.blocking_copies]
        assert len(copies) == 1, copies
        assert 'mmpretrain/models/utils/data_preprocessor.py' in copies[0]
        if precision == 'fp16':
            assert len(rec.reads) == 1, rec.reads
            assert 'torch/amp/grad_scaler.py' in rec.reads[0].replace(
                osp.sep, '/')
            assert syncs(rec, syncing_ops) == ['_local_scalar_dense']
        else:
            assert rec.reads == [] and syncs(rec, syncing_ops) == []


def test_labels_and_scores_go_up_pinned_in_one_copy_each(fake_cuda,
                                                         op_recorder):
    from mmpretrain.structures import DataSample
    labels = ([0], [1, 2], [4], [])
    scores = torch.rand(4, 5)
    samples = [DataSample().set_gt_label(lbl).set_gt_score(s)
               for lbl, s in zip(labels, scores)]
    pre = ColorAugmentDataPreprocessor(num_classes=5, seed=0).to('cuda')
    rec = op_recorder()
    with rec:
        pre(dict(inputs=torch.zeros(4, 3, 8, 8, dtype=torch.uint8),
                 data_samples=samples), training=True)
    assert rec.blocking_copies == []
    # three uploads: the images, the labels and the scores (not 8)
    uploads = [n for n, devices in rec.calls
               if n == '_to_copy' and devices == {'cpu'}]
    assert len(uploads) == 3, rec.calls
    for sample, lbl in zip(samples, labels):
        assert sample.gt_label.device.type == 'cuda'
        assert sample.gt_label.shape == (len(lbl), )
        assert sample.gt_score.device.type == 'cuda'
        assert sample.gt_score.shape == (5, )


def test_labels_stay_where_they_are_on_the_cpu():
    from mmpretrain.structures import DataSample
    samples = [DataSample().set_gt_label([1, 3]),
               DataSample().set_gt_label([0])]
    before = [s.gt_label for s in samples]
    ColorAugmentDataPreprocessor(num_classes=5, seed=0).labels_to_device(
        samples)
    assert all(s.gt_label is b for s, b in zip(samples, before))
