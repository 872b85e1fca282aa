"""Every tool on the command line, as a script runs it: exit status 0 on
success, 1 on an error (one line naming the file), 2 on a usage error, 3
where predict skipped files, and nothing printed but the tool's own output.

Real subprocesses on the shared one-epoch demo run and on CSV files made
from its images.
"""
import csv
import json
import os
import os.path as osp
import subprocess
import sys

import pytest
from demo_run import CLASSES, DEMO_CFG, ROOT, TOOLS, demo_run, onnx_model
from PIL import Image

# Subprocesses and demo training: `make test-fast` skips them.
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def run(tmp_path_factory):
    return demo_run(tmp_path_factory)


def tool(*args, timeout=600):
    """Run a tool of this checkout; return (status, stdout, stderr)."""
    res = subprocess.run([sys.executable] + [str(a) for a in args],
                         cwd=ROOT, capture_output=True, text=True,
                         timeout=timeout)
    return res.returncode, res.stdout, res.stderr


def one_error_line(err: str, name: str) -> str:
    """The last stderr line, checked to be the tool's error, no traceback."""
    assert 'Traceback' not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f'{name}: error: '), err[-3000:]
    return last


# ------------------------------------------------------------------- export


def test_export_onnx_exit_status(run, tmp_path):
    out = tmp_path / 'model.onnx'
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'deployment', 'export_onnx.py'), run.config,
        run.checkpoint, '--out', out)
    assert status == 0 and stderr == '', stderr
    assert stdout.startswith(f'Wrote {out} (ONNX opset')
    assert 'max abs diff' in stdout and out.is_file()
    status, _, stderr = tool(
        osp.join(TOOLS, 'deployment', 'export_onnx.py'), run.config,
        tmp_path / 'none.pth', '--out', tmp_path / 'x.onnx')
    assert status == 1
    assert str(tmp_path / 'none.pth') in one_error_line(stderr,
                                                        'export_onnx.py')
    status, _, stderr = tool(
        osp.join(TOOLS, 'deployment', 'export_onnx.py'), run.config,
        run.checkpoint)
    assert status == 2 and '--out' in stderr


# ------------------------------------------------------------------ predict


@pytest.fixture(scope='module')
def mixed_folder(run, tmp_path_factory):
    """Two sizes, five formats (.gif too) and one truncated JPEG."""
    folder = tmp_path_factory.mktemp('mixed')
    val = run.val_images()
    first = Image.open(val[0]).convert('RGB')
    first.save(folder / 'a.jpg', quality=95)
    Image.open(val[1]).save(folder / 'b.png')
    first.resize((first.width + 16, first.height + 8)).save(
        folder / 'c_larger.jpg', quality=95)
    Image.open(val[2]).convert('RGB').save(folder / 'd.gif')
    Image.open(val[3]).convert('RGB').resize((40, 24)).save(
        folder / 'e_wide.bmp')
    data = (folder / 'a.jpg').read_bytes()
    (folder / 'f_cut.jpg').write_bytes(data[:len(data) // 2])
    return folder


def read_csv(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize('path', ['pytorch', 'onnx'])
def test_predict_a_mixed_folder_skips_the_unreadable_file(
        run, mixed_folder, tmp_path, path):
    out = tmp_path / 'pred.csv'
    if path == 'onnx':
        model = ['--onnx', onnx_model(run, calibrated=False)[0]]
    else:
        model = [run.config, run.checkpoint]
    # batch 4: the two sizes and the wide image share chunks and batches
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'predict.py'), *model, mixed_folder, '--out', out,
        '--batch-size', 4)
    assert status == 3, stderr[-3000:]
    assert stderr.splitlines()[0] == (
        'predict.py: warning: skipped 1 of 6 image(s) that cannot be read '
        '(exit status 3):')
    assert stderr.splitlines()[1].startswith(
        f'  {mixed_folder / "f_cut.jpg"}: the JPEG is truncated')
    assert len(stderr.splitlines()) == 2
    rows = read_csv(out)
    names = [osp.basename(r['image']) for r in rows]
    assert names == ['a.jpg', 'b.png', 'c_larger.jpg', 'd.gif',
                     'e_wide.bmp']
    assert f'5 predictions written to {out}' in stdout
    for row in rows:
        # one "|"-joined cell of class names, as the training CSVs write it
        assert row['labels'] and all(
            n in CLASSES for n in row['labels'].split('|'))


def test_predict_pytorch_and_onnx_give_the_same_scores(
        run, mixed_folder, tmp_path):
    onnx = onnx_model(run, calibrated=False)[0]
    outs = []
    for i, model in enumerate(([run.config, run.checkpoint],
                               ['--onnx', onnx])):
        out = tmp_path / f'pred{i}.json'
        status, _, stderr = tool(osp.join(TOOLS, 'predict.py'), *model,
                                 mixed_folder, '--out', out, '--topk', 2,
                                 '--batch-size', 3)
        assert status == 3, stderr[-2000:]
        with open(out) as f:
            outs.append(json.load(f)['predictions'])
    for a, b in zip(*outs):
        assert a['image'] == b['image'] and a['labels'] == b['labels']
        assert a['scores'] == pytest.approx(b['scores'], abs=1e-4)


def test_predict_errors_and_usage(run, tmp_path):
    (tmp_path / 'empty.jpg').write_bytes(b'')
    status, _, stderr = tool(osp.join(TOOLS, 'predict.py'), run.config,
                             run.checkpoint, tmp_path / 'empty.jpg')
    assert status == 1
    assert 'none of the 1 image(s) can be read' in one_error_line(
        stderr, 'predict.py')
    status, _, stderr = tool(osp.join(TOOLS, 'predict.py'), run.config,
                             run.checkpoint, tmp_path / 'empty.jpg',
                             '--batch-size', 0)
    assert status == 2 and '--batch-size must be >= 1' in stderr


# ------------------------------------------------- calibrate and visualize


def test_calibrate_prints_only_its_report(run, tmp_path):
    out = tmp_path / 'cal.json'
    status, stdout, stderr = tool(osp.join(TOOLS, 'calibrate.py'),
                                  run.config, run.checkpoint, '--out', out)
    assert status == 0 and stderr == '', stderr
    assert 'float32' not in stdout and 'Loads checkpoint' not in stdout
    assert f'calibration file: {out}' in stdout and out.is_file()
    status, _, stderr = tool(osp.join(TOOLS, 'calibrate.py'), run.config,
                             run.checkpoint, '--split', 'nope')
    assert status == 2


def test_visualize_gt_json_error_names_the_path(run, tmp_path):
    missing = tmp_path / 'nope.json'
    status, _, stderr = tool(osp.join(TOOLS, 'visualize.py'), run.config,
                             run.checkpoint, run.val_images()[0],
                             '--gt-json', missing, '--out',
                             tmp_path / 'v.png')
    assert status == 1
    line = one_error_line(stderr, 'visualize.py')
    assert f'--gt-json {missing} does not exist' in line
    assert 'data_root' not in line and 'data_prefix' not in line
    status, _, _ = tool(osp.join(TOOLS, 'visualize.py'), run.config,
                        run.checkpoint, run.val_images()[0], '--out',
                        tmp_path / 'v.png')
    assert status == 0 and (tmp_path / 'v.png').is_file()


# ------------------------------------------------------ CSV data, training


@pytest.fixture(scope='module')
def csv_data(run, tmp_path_factory):
    """The demo images listed in CSV files; train.csv lacks "nine"."""
    root = tmp_path_factory.mktemp('csv')
    for split in ('train', 'val'):
        with open(osp.join(run.root, 'annotations',
                           f'instances_{split}.json')) as f:
            coco = json.load(f)
        names = {c['id']: c['name'] for c in coco['categories']}
        labels = {}
        for ann in coco['annotations']:
            labels.setdefault(ann['image_id'], set()).add(
                names[ann['category_id']])
        rows = []
        for img in coco['images']:
            tags = sorted(labels.get(img['id'], ()))
            if split == 'train':
                tags = [t for t in tags if t != 'nine']
            rows.append((osp.join(run.root, split, img['file_name']),
                         '|'.join(tags)))
        with open(root / f'{split}.csv', 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['image', 'labels'])
            writer.writerows(rows)
    return root


def csv_config(tmp_path, root, val_extra='', **train_loader):
    """The demo model on the CSV files, one short epoch."""
    loader = ''.join(f', {k}={v!r}' for k, v in train_loader.items())
    text = f'''_base_ = [{DEMO_CFG!r}]
train_dataloader = dict(
    batch_size=32{loader},
    dataset=dict(_delete_=True, type='MultiLabelCsvDataset',
                 data_root={str(root)!r}, ann_file='train.csv',
                 pipeline=_base_.pipeline))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='MultiLabelCsvDataset',
                 data_root={str(root)!r}, ann_file='val.csv',
                 test_mode=True, pipeline=_base_.pipeline{val_extra}))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = dict(T_max=1)
'''
    path = tmp_path / 'csv_demo.py'
    path.write_text(text)
    return path


def train(config, work_dir, *options):
    return tool(osp.join(TOOLS, 'train.py'), config, '--work-dir', work_dir,
                *options)


def test_train_refuses_a_val_class_the_training_csv_lacks(
        csv_data, tmp_path):
    train_csv, val_csv = str(csv_data / 'train.csv'), str(
        csv_data / 'val.csv')
    # each split with its own sorted names: indices shifted, refused
    status, _, stderr = train(csv_config(tmp_path, csv_data), tmp_path / 'a')
    assert status == 1
    line = one_error_line(stderr, 'train.py')
    assert "class(es) ['nine'] of the val split never occur" in line
    assert train_csv in line and val_csv in line
    assert not (tmp_path / 'a' / 'epoch_1.pth').exists()
    # the training list given to val: the val file's extra class is named
    status, _, stderr = train(
        csv_config(tmp_path, csv_data, ", classes_from='train.csv'"),
        tmp_path / 'b')
    assert status == 1
    line = one_error_line(stderr, 'train.py')
    assert "['nine']" in line and 'never occur in the training file' in line
    assert train_csv in line and val_csv in line


def test_train_refuses_a_wrong_num_classes_before_training(
        csv_data, tmp_path):
    classes = ', '.join(repr(c) for c in CLASSES)
    config = csv_config(tmp_path, csv_data,
                        f', classes_from=None, classes=[{classes}]')
    text = config.read_text().replace(
        "dataset=dict(_delete_=True, type='MultiLabelCsvDataset',\n"
        f"                 data_root={str(csv_data)!r}, ann_file='train.csv',",
        "dataset=dict(_delete_=True, type='MultiLabelCsvDataset',\n"
        f"                 data_root={str(csv_data)!r}, ann_file='train.csv',"
        f" classes=[{classes}],", 1)
    config.write_text(text)
    status, _, stderr = train(config, tmp_path / 'w', '--cfg-options',
                              'model.head.num_classes=20',
                              'data_preprocessor.num_classes=20')
    assert status == 1
    line = one_error_line(stderr, 'train.py')
    assert 'model.head.num_classes is 20 and data_preprocessor.num_classes '\
        'is 20, but the training dataset' in line
    assert 'has 10 classes' in line and 'num_classes=10' in line
    # the same config with the right count trains, and logs the datasets
    status, stdout, stderr = train(config, tmp_path / 'ok')
    assert status == 0, stderr[-3000:]
    assert 'train dataset MultiLabelCsvDataset "' in stdout + stderr
    assert '10 classes from `classes`' in stdout + stderr
    # a second run into the same work dir is refused: no mixed folder
    status, _, stderr = train(config, tmp_path / 'ok')
    assert status == 1
    assert 'holds the checkpoints of another run' in one_error_line(
        stderr, 'train.py')


def test_train_batch_larger_than_the_training_set(run, tmp_path):
    # 64 training images, batch 128, drop_last=True (the demo's)
    status, _, stderr = train(
        run.config, tmp_path / 'w', '--cfg-options',
        'train_dataloader.batch_size=128')
    assert status == 1
    line = one_error_line(stderr, 'train.py')
    assert 'fewer than one batch of 128 with drop_last=True, so an epoch '\
        'has no iteration' in line
    assert 'epoch_length' not in stderr


def test_test_py_usage_error(run):
    status, _, stderr = tool(osp.join(TOOLS, 'test.py'), run.config)
    assert status == 2 and 'checkpoint' in stderr


# ------------------------------------------------------------ dataset_stats


def test_dataset_stats_shows_differing_class_lists(csv_data, tmp_path):
    config = csv_config(tmp_path, csv_data)
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'misc', 'dataset_stats.py'), config, '--splits',
        'train', 'val')
    assert status == 0 and stderr == '', stderr[-2000:]
    assert 'WARNING: the splits have different class lists' in stdout
    differing = [l for l in stdout.splitlines() if l.endswith('<- differs')]
    # train.csv lacks "nine": from its index on, the same index names
    # other classes in the two splits
    assert differing and any(l.split()[3] == 'nine' for l in differing)
    config = csv_config(tmp_path, csv_data, ", classes_from='train.csv'")
    status, _, stderr = tool(
        osp.join(TOOLS, 'misc', 'dataset_stats.py'), config, '--splits',
        'train', 'val')
    assert status == 1 and "['nine']" in one_error_line(
        stderr, 'dataset_stats.py')


def test_dataset_stats_counts_rows_without_labels_and_missing_images(
        csv_data, tmp_path):
    root = tmp_path / 'data'
    root.mkdir()
    (root / 'train.csv').write_text(
        'image,labels\nnope1.jpg,cat\nnope2.jpg,\n')
    (root / 'val.csv').write_text('image,labels\nnope3.jpg,cat\n')
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'misc', 'dataset_stats.py'),
        csv_config(tmp_path, root), '--splits', 'train')
    assert status == 1
    line = one_error_line(stderr, 'dataset_stats.py')
    assert 'no sample left' in line and str(root / 'train.csv') in line
    # rows without any class are counted
    os.makedirs(root / 'img')
    for name in ('nope1.jpg', 'nope2.jpg'):
        Image.new('RGB', (8, 8)).save(root / name)
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'misc', 'dataset_stats.py'),
        csv_config(tmp_path, root), '--splits', 'train')
    assert status == 0, stderr[-2000:]
    assert 'train: 1 row(s) name no class' in stdout
    assert 'CSV lines: 3' in stdout


# --------------------------------------------- experiment-grid tools (dry)


def test_linear_probe_and_ablation_dry_runs(tmp_path):
    status, stdout, stderr = tool(osp.join(TOOLS, 'ablation.py'), 'list',
                                  'table2')
    assert status == 0 and stderr == '', stderr[-2000:]
    assert 'tools/dist_train.sh configs/ablations/table2_eps8.py' in stdout
    status, _, stderr = tool(osp.join(TOOLS, 'ablation.py'), 'nope')
    assert status == 2
    status, stdout, stderr = tool(
        osp.join(TOOLS, 'linear_probe.py'), tmp_path / 'in1k.pth',
        '--dry-run', '--work-dir', tmp_path)
    assert status == 0 and 'train.py' in stdout, stderr[-2000:]
    status, _, stderr = tool(osp.join(TOOLS, 'linear_probe.py'),
                             '--no-such-option')
    assert status == 2


def test_plot_ap_exit_status(tmp_path):
    status, _, stderr = tool(osp.join(TOOLS, 'analysis', 'plot_ap.py'),
                             tmp_path / 'results.pkl')
    assert status == 2 and '--out' in stderr
    status, _, stderr = tool(osp.join(TOOLS, 'analysis', 'plot_ap.py'),
                             tmp_path / 'results.pkl', '--out',
                             tmp_path / 'ap.png')
    assert status == 1
    assert 'results.pkl' in one_error_line(stderr, 'plot_ap.py')
