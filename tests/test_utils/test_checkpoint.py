"""Unreadable checkpoints and strict loading (mmtwoway.utils.checkpoint).

Real files written by torch.save and damaged the ways files get damaged
(empty, text, cut short).
"""
import os
import time

import pytest
import torch
from mmengine.runner.checkpoint import _load_checkpoint

import mmtwoway  # noqa: F401  (registers the head)
from mmtwoway.utils.checkpoint import (CheckpointError, check_state_dict,
                                       checkpoints_of, load_any, load_strict,
                                       previous_checkpoint, read_checkpoint,
                                       resume_hint, unreadable_checkpoint)


def model(num_classes=10, depth=18):
    from mmpretrain.registry import MODELS
    return MODELS.build(
        dict(
            type='ImageClassifier',
            backbone=dict(type='ResNet_CIFAR', depth=depth, stem_channels=8,
                          base_channels=8, out_indices=(3, )),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='TwoWayLinearClsHead', num_classes=num_classes,
                      in_channels=64)))


@pytest.fixture(scope='module')
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp('ckpt') / 'epoch_1.pth'
    torch.save(dict(state_dict=model().state_dict(), meta=dict(epoch=1)),
               path)
    return path


def damaged(tmp_path, good, kind):
    path = tmp_path / f'{kind}.pth'
    data = good.read_bytes()
    path.write_bytes({
        'empty': b'',
        'text': b'version https://git-lfs.github.com/spec/v1\noid sha256:',
        'half': data[:len(data) // 2],
        'tail': data[:-10],
    }[kind])
    return path


@pytest.mark.parametrize('kind,reason', [
    ('empty', r'the file is empty \(0 bytes\)'),
    ('text', r"it is not a PyTorch checkpoint \(it starts with b'version"),
    ('half', r'the file is truncated'),
    ('tail', r'the file is truncated'),
])
def test_unreadable_checkpoints_are_one_clear_error(tmp_path, good, kind,
                                                    reason):
    path = damaged(tmp_path, good, kind)
    match = rf'checkpoint {path} cannot be read: {reason}'
    with pytest.raises(CheckpointError, match=match):
        read_checkpoint(str(path))
    with pytest.raises(CheckpointError, match=match):
        load_any(str(path))
    # mmengine's own loading stays mmengine's: the tools diagnose its
    # failure afterwards (tools/train.py)
    with pytest.raises(Exception) as raised:
        _load_checkpoint(str(path), map_location='cpu')
    assert not isinstance(raised.value, CheckpointError)
    found = unreadable_checkpoint([None, 'https://host/x.pth', str(good),
                                   str(path)])
    assert isinstance(found, CheckpointError) and found.path == str(path)
    assert unreadable_checkpoint([str(good)]) is None


def model_cfg(num_classes=10):
    from mmengine.config import Config
    return Config(dict(model=dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=8,
                      base_channels=8, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='TwoWayLinearClsHead', num_classes=num_classes,
                  in_channels=64))))


def test_a_readable_checkpoint_loads(good):
    ckpt = read_checkpoint(str(good))
    assert ckpt['meta']['epoch'] == 1
    with pytest.raises(FileNotFoundError, match='missing.pth does not exist'):
        read_checkpoint(str(good.parent / 'missing.pth'))


def test_head_mismatch_names_the_checkpoint_keys_and_shapes(good):
    state = read_checkpoint(str(good))['state_dict']
    with pytest.raises(ValueError) as err:
        check_state_dict(model(num_classes=8), state, 'ckpt.pth')
    message = str(err.value)
    assert message.startswith('checkpoint ckpt.pth does not fit')
    assert "it has 10 classes (head.fc.weight of shape (10, 64)) but the " \
        "config's model.head.num_classes is 8" in message
    assert 'head.fc.weight (10, 64) vs (8, 64); head.fc.bias (10,) vs ' \
        '(8,)' in message
    assert '\n' not in message


def test_architecture_mismatch_names_missing_and_unexpected_keys(good):
    state = read_checkpoint(str(good))['state_dict']
    with pytest.raises(ValueError) as err:
        check_state_dict(model(depth=34), state, 'ckpt.pth')
    message = str(err.value)
    assert '96 missing: backbone.layer1.2.bn1.bias; ' in message
    assert 'unexpected' not in message  # resnet18 is a subset of resnet34
    with pytest.raises(ValueError, match=r'96 unexpected: backbone.layer1.2'):
        check_state_dict(model(depth=18),
                         model(depth=34).state_dict(), 'r34.pth')


def test_load_strict_loads_every_weight(good, tmp_path):
    fresh = model()
    load_strict(fresh, str(good))
    ref = read_checkpoint(str(good))['state_dict']
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, ref[key]), key
    # a DDP prefix is taken off
    wrapped = tmp_path / 'ddp.pth'
    torch.save(dict(state_dict={'module.' + k: v for k, v in ref.items()}),
               wrapped)
    load_strict(model(), str(wrapped))


def test_load_model_for_the_inferencer_loads_strictly(good):
    """mmtwoway's path to mmpretrain's inferencer: load_model, strict."""
    from mmtwoway.apis import load_model
    with pytest.raises(ValueError, match=r'epoch_1.pth does not fit .*'
                       r'head.fc.weight \(10, 64\) vs \(12, 64\)'):
        load_model(model_cfg(num_classes=12), str(good), device='cpu')
    loaded = load_model(model_cfg(), str(good), device='cpu')
    ref = read_checkpoint(str(good))['state_dict']
    assert torch.equal(loaded.head.fc.weight.cpu(), ref['head.fc.weight'])


def test_checkpoints_of_a_run(tmp_path, good):
    from mmengine.config import Config
    cfg = model_cfg()
    cfg.model.backbone.init_cfg = dict(type='Pretrained',
                                       checkpoint='from-torchvision://r.pth')
    cfg.load_from = str(good)
    assert sorted(checkpoints_of(cfg)) == sorted(
        [str(good), 'from-torchvision://r.pth'])
    # resume without a path: the work dir's last checkpoint
    work = tmp_path / 'work'
    work.mkdir()
    (work / 'last_checkpoint').write_text(str(work / 'epoch_3.pth'))
    cfg = Config(dict(model=dict(type='X'), resume=True, load_from=None,
                      work_dir=str(work)))
    assert checkpoints_of(cfg) == [str(work / 'epoch_3.pth')]


def test_partial_loading_for_fine_tuning_stays_possible(good, capsys):
    """``load_from`` / init_cfg: what fits loads, the rest is logged."""
    from mmengine.runner.checkpoint import load_checkpoint
    fresh = model(num_classes=8)
    before = fresh.head.fc.weight.clone()
    load_checkpoint(fresh, str(good), map_location='cpu', strict=False)
    logged = capsys.readouterr().out
    assert 'do not match exactly' in logged
    assert 'size mismatch for head.fc.weight' in logged
    ref = read_checkpoint(str(good))['state_dict']
    assert torch.equal(fresh.backbone.conv1.weight,
                       ref['backbone.conv1.weight'])
    assert torch.equal(fresh.head.fc.weight, before)  # skipped, not loaded


def test_previous_checkpoint_and_resume_hint(tmp_path, good):
    work = tmp_path / 'work'
    work.mkdir()
    data = good.read_bytes()
    for i, name in enumerate(['epoch_1.pth', 'epoch_2.pth', 'epoch_3.pth']):
        (work / name).write_bytes(data)
        stamp = time.time() - 100 + i
        os.utime(work / name, (stamp, stamp))
    (work / 'epoch_3.pth').write_bytes(data[:100])  # the last one: cut
    os.utime(work / 'epoch_2.pth', (time.time() - 50, time.time() - 50))
    last = str(work / 'epoch_3.pth')
    assert previous_checkpoint(last) == str(work / 'epoch_2.pth')
    assert resume_hint(last) == (
        f'The previous checkpoint {work / "epoch_2.pth"} can be read: '
        f'resume from it with --resume {work / "epoch_2.pth"}')
    (work / 'epoch_2.pth').write_bytes(b'')
    assert previous_checkpoint(last) == str(work / 'epoch_1.pth')
    (work / 'epoch_1.pth').unlink()
    assert previous_checkpoint(last) is None
    assert 'No other checkpoint in' in resume_hint(last)


@pytest.mark.slow
def test_a_runner_checkpoint_without_the_fixes_says_what_to_do(tmp_path):
    """In a process without mmtwoway_stack_fixes (torch >= 2.6)."""
    import subprocess
    import sys
    path = tmp_path / 'runner.pth'
    code = f"""
import pickle, torch
from mmengine.logging.history_buffer import HistoryBuffer
import mmtwoway
from mmtwoway.utils.checkpoint import read_checkpoint
torch.save(dict(state_dict={{}}, message_hub=dict(h=HistoryBuffer())),
           {str(path)!r})
try:
    read_checkpoint({str(path)!r})
except pickle.UnpicklingError as err:
    print('refused:', err)
else:
    print('loaded')
"""
    res = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    last = res.stdout.strip().splitlines()[-1]
    from mmengine.utils import digit_version
    if digit_version(torch.__version__) < digit_version('2.6.0'):
        assert last == 'loaded'  # weights_only is not the default there
        return
    assert last == (f'refused: checkpoint {path} holds mmengine objects '
                    'that torch.load refuses with weights_only=True: '
                    '`import mmtwoway_stack_fixes` first '
                    '(docs/stack_fixes.md).')
