"""Bad input through the tools, as a user meets it: unreadable images and
checkpoints, checkpoints of another head or architecture, settings that
cannot train. Each must be one clear error naming the file (or a warning
and a non-zero exit, for predict's skipped images), never a wrong number.

Real files, the shared one-epoch demo run, the tools as subprocesses where
their exit status is what is tested.
"""
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import pytest
import torch
from demo_run import ROOT, TOOLS, demo_run, run_main
from mmengine.config import Config

from mmtwoway.utils.checkpoint import read_checkpoint

# Subprocesses and demo training: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


def tool(args, timeout=600):
    """Run a tool from the repository root; return (status, stdout, err)."""
    res = subprocess.run([sys.executable] + [str(a) for a in args],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    return res.returncode, res.stdout, res.stderr


def write_broken_images(folder, real_image):
    """The three ways an image file is unreadable, with real bytes."""
    with open(real_image, 'rb') as f:
        png = f.read()
    broken = {
        'empty.png': b'',
        'text.png': b'<html>404 Not Found</html>',
        'cut.png': png[:len(png) // 2],
    }
    for name, data in broken.items():
        with open(osp.join(folder, name), 'wb') as f:
            f.write(data)
    return broken


# ------------------------------------------------------------------ images


def test_predict_skips_unreadable_images_writes_the_rest_and_exits_3(
        run, tmp_path):
    folder = tmp_path / 'imgs'
    shutil.copytree(osp.join(run.root, 'val'), folder)
    good = sorted(os.listdir(folder))
    write_broken_images(str(folder), run.val_images()[0])
    out = tmp_path / 'pred.json'
    status, stdout, stderr = tool([
        osp.join(TOOLS, 'predict.py'), run.config, run.checkpoint, folder,
        '--out', out, '--device', 'cpu'
    ])
    assert status == 3, stderr[-2000:]
    with open(out) as f:
        written = [p['image'] for p in json.load(f)['predictions']]
    assert written == [str(folder / name) for name in good]
    warning = stderr[stderr.index('predict.py: warning'):]
    assert warning.startswith(
        f'predict.py: warning: skipped 3 of {len(good) + 3} image(s) that '
        'cannot be read (exit status 3):')
    assert f'{folder / "empty.png"}: the file is empty (0 bytes)' in warning
    assert (f"{folder / 'text.png'}: it is not an image file (it starts "
            "with b'<html>404 No')") in warning
    assert (f'{folder / "cut.png"}: the PNG data cannot be decoded '
            '(truncated or damaged)') in warning
    assert f'{len(good)} predictions written' in stdout


def test_predict_batch_size_must_be_positive(run, capsys):
    with pytest.raises(SystemExit):
        run_main('predict', [run.config, run.checkpoint,
                             run.val_images()[0], '--batch-size', '0'])
    assert '--batch-size must be >= 1, got 0' in capsys.readouterr().err


def test_visualize_names_an_unreadable_image(run, tmp_path):
    broken = write_broken_images(str(tmp_path), run.val_images()[0])
    for name in broken:
        with pytest.raises(ValueError, match=f'image {tmp_path / name} '
                           'cannot be read'):
            run_main('visualize', [run.config, run.checkpoint,
                                   tmp_path / name, '--out',
                                   tmp_path / 'v.png'])


@pytest.mark.parametrize('split', ['train', 'test'])
def test_datasets_name_an_unreadable_image(run, tmp_path, split):
    from mmengine.runner import Runner
    root = tmp_path / 'data'
    shutil.copytree(run.root, root)
    folder = 'train' if split == 'train' else 'val'
    victim = sorted(os.listdir(root / folder))[3]
    (root / folder / victim).write_bytes(b'')
    cfg = Config.fromfile(run.config)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = str(root)
    cfg.work_dir = str(tmp_path / 'w')
    cfg.load_from = run.checkpoint
    runner = Runner.from_cfg(cfg)
    with pytest.raises(ValueError, match=f'image {root / folder / victim} '
                       r'cannot be read: the file is empty \(0 bytes\)'):
        runner.train() if split == 'train' else runner.test()


# ------------------------------------------------------------- checkpoints


@pytest.fixture(scope='module')
def bad_checkpoints(run, tmp_path_factory):
    """A checkpoint with an 8-class head, one of another architecture, and
    the damaged ones."""
    from mmpretrain.registry import MODELS
    folder = tmp_path_factory.mktemp('ckpts')
    ckpt = read_checkpoint(run.checkpoint)
    paths = {}
    eight = dict(ckpt['state_dict'])
    eight['head.fc.weight'] = eight['head.fc.weight'][:8]
    eight['head.fc.bias'] = eight['head.fc.bias'][:8]
    paths['eight'] = folder / 'eight_classes.pth'
    torch.save(dict(state_dict=eight, meta=ckpt['meta']), paths['eight'])
    cfg = Config.fromfile(run.config)
    cfg.model.backbone.depth = 34
    other = MODELS.build(cfg.model)
    paths['other'] = folder / 'resnet34.pth'
    torch.save(dict(state_dict=other.state_dict()), paths['other'])
    data = open(run.checkpoint, 'rb').read()
    for name, content in (('empty', b''), ('text', b'not a checkpoint\n'),
                          ('cut', data[:len(data) // 3])):
        paths[name] = folder / f'{name}.pth'
        paths[name].write_bytes(content)
    return paths


@pytest.mark.parametrize('kind,expected', [
    ('eight', ["it has 8 classes (head.fc.weight of shape (8, 128)) but the "
               "config's model.head.num_classes is 10",
               'head.fc.weight (8, 128) vs (10, 128); head.fc.bias (8,) vs '
               '(10,)']),
    ('other', ['does not fit the model of the config: 96 unexpected: '
               'backbone.layer1.2.bn1.bias; ']),
    ('empty', ['cannot be read: the file is empty (0 bytes)']),
    ('text', ["cannot be read: it is not a PyTorch checkpoint (it starts "
              "with b'not a checkpoint"]),
    ('cut', ['cannot be read: the file is truncated']),
])
def test_test_py_refuses_a_checkpoint_that_does_not_fit(
        run, bad_checkpoints, tmp_path, kind, expected):
    """Was: exit 0 and mAP@class 17.57 (another head) / 23.04 (another
    architecture), or KeyError: 101 / EOFError."""
    status, stdout, stderr = tool([
        osp.join(TOOLS, 'test.py'), run.config, bad_checkpoints[kind],
        '--work-dir', tmp_path
    ])
    assert status == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(f'test.py: error: checkpoint '
                           f'{bad_checkpoints[kind]} ')
    for part in expected:
        assert part in last, last
    assert 'mAP@class: ' not in stdout + stderr


def test_predict_and_calibrate_name_an_unreadable_checkpoint(
        run, bad_checkpoints):
    for kind in ('empty', 'text', 'cut'):
        with pytest.raises(ValueError, match=f'checkpoint '
                           f'{bad_checkpoints[kind]} cannot be read'):
            run_main('predict', [run.config, bad_checkpoints[kind],
                                 run.val_images()[0]])
        with pytest.raises(ValueError, match=f'checkpoint '
                           f'{bad_checkpoints[kind]} cannot be read'):
            run_main('calibrate', [run.config, bad_checkpoints[kind]])
    with pytest.raises(ValueError, match='head.fc.weight .8, 128. vs '
                       r'.10, 128.'):
        run_main('calibrate', [run.config, bad_checkpoints['eight']])


def test_a_failed_resume_names_the_previous_checkpoint(run, tmp_path):
    work = tmp_path / 'work'
    shutil.copytree(run.work_dir, work)
    # two epochs' checkpoints, the last one cut short by a full disk
    data = (work / 'epoch_1.pth').read_bytes()
    (work / 'epoch_2.pth').write_bytes(data[:len(data) // 2])
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    status, _, stderr = tool([
        osp.join(TOOLS, 'train.py'), run.config, '--work-dir', work,
        '--resume', '--cfg-options', 'train_cfg.max_epochs=3'
    ])
    assert status == 1
    last = stderr.strip().splitlines()[-1]
    assert last == (
        f'train.py: error: checkpoint {work / "epoch_2.pth"} cannot be '
        'read: the file is truncated (its zip directory is missing: was the '
        'save or the copy interrupted?). The previous checkpoint '
        f'{work / "epoch_1.pth"} can be read: resume from it with --resume '
        f'{work / "epoch_1.pth"}')


def test_train_py_refuses_a_bucket_size_before_the_first_iteration(
        run, tmp_path):
    # 64 training images, batch 24, drop_last=False: the last batch has 16
    status, stdout, stderr = tool([
        osp.join(TOOLS, 'train.py'), run.config, '--work-dir', tmp_path,
        '--cfg-options', 'train_dataloader.batch_size=24',
        'train_dataloader.drop_last=False',
        'model.head.loss.bucket_size=12'
    ])
    assert status == 1
    last = stderr.strip().splitlines()[-1]
    assert last.startswith(
        'train.py: error: TwoWayLoss (head.loss_module) with bucket_size=12 '
        'cannot train here: 64 training samples over 1 process(es) give 64 '
        'per process, so with batch_size=24 and drop_last=False the last '
        'batch of every epoch has 16 samples.')
    assert 'Epoch(train)' not in stdout + stderr


def test_load_from_still_fine_tunes_from_another_head(run, bad_checkpoints,
                                                      tmp_path, capsys):
    """Partial loading for fine-tuning stays: what fits is loaded, the
    skipped keys are logged."""
    from mmengine.runner import Runner
    cfg = Config.fromfile(run.config)
    cfg.work_dir = str(tmp_path / 'w')
    cfg.load_from = str(bad_checkpoints['eight'])
    runner = Runner.from_cfg(cfg)
    head_before = runner.model.head.fc.weight.detach().clone()
    runner.load_or_resume()
    logged = capsys.readouterr().out
    assert 'size mismatch for head.fc.weight: copying a param with shape ' \
        'torch.Size([8, 128]) from checkpoint' in logged
    ckpt = read_checkpoint(str(bad_checkpoints['eight']))['state_dict']
    assert torch.equal(runner.model.backbone.conv1.weight,
                       ckpt['backbone.conv1.weight'])
    assert torch.equal(runner.model.head.fc.weight, head_before)
