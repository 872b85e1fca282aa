"""TrainSettingsHook: settings that cannot work fail before the first
iteration; a sigmoid > 0.5 F1 of two-way logits is flagged.

Real Runner on the demo data (40 training images). Before the hook, a
bucket size that does not divide the last batch failed at the last
iteration of epoch 1.
"""
import logging

import pytest
from demo_runner import build_runner, demo_cfg, make_data
from mmengine.logging import MMLogger

from mmtwoway.engine.hooks import TrainSettingsError, check_train_settings

HOOK = [dict(type='TrainSettingsHook')]


@pytest.fixture(scope='module')
def root(tmp_path_factory):
    return make_data(str(tmp_path_factory.mktemp('demo')))


def with_bucket(cfg, bucket_size):
    cfg.model.head.loss = dict(type='TwoWayLoss', bucket_size=bucket_size)
    return cfg


def test_bucket_that_misfits_the_last_batch_fails_before_training(
        root, tmp_path):
    # 40 samples, batch 24, drop_last=False: the last batch has 16 samples,
    # which buckets of 12 do not divide.
    cfg = with_bucket(
        demo_cfg(root, str(tmp_path / 'w'), batch_size=24, drop_last=False,
                 custom_hooks=HOOK), 12)
    runner = build_runner(cfg)
    with pytest.raises(TrainSettingsError) as err:
        runner.train()
    message = str(err.value)
    assert message.startswith('TwoWayLoss (head.loss_module) with '
                              'bucket_size=12 cannot train here: 40 '
                              'training samples over 1 process(es) give 40 '
                              'per process, so with batch_size=24 and '
                              'drop_last=False the last batch of every '
                              'epoch has 16 samples.')
    assert 'bucket_size=12 does not divide the local batch of 16' in message
    assert runner.iter == 0  # not a single iteration ran


def test_the_same_setting_without_the_hook_fails_only_at_the_last_batch(
        root, tmp_path):
    """What the hook prevents: a whole epoch, then the error."""
    cfg = with_bucket(
        demo_cfg(root, str(tmp_path / 'w'), batch_size=24, drop_last=False),
        12)
    runner = build_runner(cfg)
    with pytest.raises(ValueError, match='does not divide the local batch '
                       'of 16'):
        runner.train()
    assert runner.iter == 1  # the first (full) batch had trained


def test_fitting_buckets_and_drop_last_pass(root, tmp_path):
    for batch_size, bucket, drop_last in ((16, 8, True), (24, 8, False)):
        cfg = with_bucket(
            demo_cfg(root, str(tmp_path / f'w{batch_size}'),
                     batch_size=batch_size, drop_last=drop_last,
                     custom_hooks=HOOK), bucket)
        runner = build_runner(cfg)
        runner.train()
        assert runner.iter == 2


@pytest.mark.parametrize('batch_size,bucket,drop_last,world,match', [
    (64, None, True, 1, r'40 training samples over 1 process\(es\) give 40 '
     r'per process, fewer than one batch of 64 with drop_last=True, so an '
     r'epoch has no iteration'),
    (16, 32, True, 1, r'bucket_size=32 is larger than the local batch of 16'
     r' samples, so a bucket spans bucket_size / batch ranks; that must be'
     r' a whole number dividing the world size \(1\)'),
    (16, 48, True, 4, r'dividing the world size \(4\)'),
    (16, 12, True, 1, r'the batch size is 16\. .*does not divide the local '
     r'batch of 16'),
])
def test_settings_that_cannot_work(root, tmp_path, batch_size, bucket,
                                   drop_last, world, match):
    cfg = demo_cfg(root, str(tmp_path / 'w'), batch_size=batch_size,
                   drop_last=drop_last)
    if bucket is not None:
        with_bucket(cfg, bucket)
    runner = build_runner(cfg)
    # the check itself, for world sizes this machine cannot start
    with pytest.raises(TrainSettingsError, match=match):
        check_train_settings(runner.model, runner.train_dataloader, world)


def test_cross_rank_buckets_that_fit_pass(root, tmp_path):
    cfg = with_bucket(demo_cfg(root, str(tmp_path / 'w'), batch_size=8), 32)
    runner = build_runner(cfg)
    # 40 samples over 4 ranks: 10 per rank, batches of 8 with drop_last
    check_train_settings(runner.model, runner.train_dataloader, 4)


class Capture(logging.Handler):

    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_f1_of_a_sigmoid_threshold_on_two_way_logits_warns(root, tmp_path):
    """mmpretrain's MultiLabelLinearClsHead (sigmoid > 0.5) with TwoWayLoss:
    MultiLabelF1 of its labels means nothing, and says so."""
    messages = []
    for head in ('MultiLabelLinearClsHead', 'TwoWayLinearClsHead'):
        cfg = demo_cfg(root, str(tmp_path / head), custom_hooks=HOOK)
        cfg.model.head.type = head
        runner = build_runner(cfg)
        capture = Capture()
        MMLogger.get_current_instance().addHandler(capture)
        try:
            metrics = runner.test()
        finally:
            MMLogger.get_current_instance().removeHandler(capture)
        assert 'multi-label/OF1' in metrics
        messages.append([r.getMessage() for r in capture.records
                         if r.levelno == logging.WARNING])
    bce_head, two_way_head = messages
    assert any('MultiLabelF1: these F1 values mean nothing: the model\'s '
               'labels are sigmoid(logit) > 0.5 (MultiLabelLinearClsHead '
               'with TwoWayLoss)' in m for m in bce_head), bce_head
    assert not any('mean nothing' in m for m in two_way_head)


def test_a_metric_with_its_own_decision_is_not_flagged(root, tmp_path):
    cfg = demo_cfg(root, str(tmp_path / 'w'), custom_hooks=HOOK)
    cfg.model.head.type = 'MultiLabelLinearClsHead'
    cfg.test_evaluator = [dict(type='MultiLabelMAP'),
                         dict(type='MultiLabelF1', topk=2)]
    runner = build_runner(cfg)
    runner.test()
    metric = runner.test_loop.evaluator.metrics[1]
    assert metric._decision_warning is None


# ------------------------------------------ classes against model and splits


def csv_split(folder, name, rows, **kwargs):
    """A MultiLabelCsvDataset of ``rows`` (image, labels) in ``folder``."""
    from mmtwoway.datasets import MultiLabelCsvDataset
    with open(folder / name, 'w') as f:
        f.write('image,labels\n' + ''.join(f'{i},{l}\n' for i, l in rows))
    return MultiLabelCsvDataset(name, data_root=str(folder),
                                missing_images='skip', **kwargs)


def test_splits_with_shifted_classes_are_refused(tmp_path):
    from mmtwoway.engine.hooks.train_settings_hook import check_same_classes
    for img in ('a.jpg', 'b.jpg', 'c.jpg'):
        (tmp_path / img).write_bytes(b'')  # only the paths are needed
    train = csv_split(tmp_path, 'train.csv', [('a.jpg', 'cat'),
                                              ('b.jpg', 'sky')])
    val = csv_split(tmp_path, 'val.csv', [('c.jpg', 'bird|sky')])
    with pytest.raises(TrainSettingsError) as err:
        check_same_classes(train, val)
    message = str(err.value)
    assert "class(es) ['bird'] of the val split never occur" in message
    assert str(tmp_path / 'train.csv') in message
    assert str(tmp_path / 'val.csv') in message
    # val without a training class: same sizes would not help, refused too
    val = csv_split(tmp_path, 'val2.csv', [('c.jpg', 'sky')])
    with pytest.raises(TrainSettingsError, match=r"\['cat'\] of the "
                       'training split are absent'):
        check_same_classes(train, val)
    # the training list given to val: accepted
    val = csv_split(tmp_path, 'val3.csv', [('c.jpg', 'sky')],
                    classes_from='train.csv')
    check_same_classes(train, val)


def test_num_classes_differing_from_the_dataset_fails_before_training(
        root, tmp_path):
    cfg = demo_cfg(root, str(tmp_path / 'w'), custom_hooks=HOOK)
    cfg.model.head.num_classes = 20
    cfg.data_preprocessor.num_classes = 20
    runner = build_runner(cfg)
    with pytest.raises(TrainSettingsError) as err:
        runner.train()
    message = str(err.value)
    assert message.startswith('model.head.num_classes is 20 and '
                              'data_preprocessor.num_classes is 20, but the '
                              'training dataset')
    assert 'has 10 classes' in message and 'num_classes=10' in message
    assert runner.iter == 0


def test_a_used_work_dir_is_refused_unless_resuming(tmp_path):
    from mmtwoway.engine.hooks import check_work_dir
    check_work_dir(str(tmp_path / 'new'), resume=False)
    (tmp_path / 'epoch_1.pth').write_bytes(b'')
    with pytest.raises(TrainSettingsError, match='holds the checkpoints of '
                       r'another run \(epoch_1.pth\)\. --resume'):
        check_work_dir(str(tmp_path), resume=False)
    check_work_dir(str(tmp_path), resume=True)
