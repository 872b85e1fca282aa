"""tools/misc/dataset_stats.py on original-format fixtures."""
import json
import os.path as osp

import pytest
import torch

import original_formats as F
from tools.misc import dataset_stats

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.fixture(scope='module')
def tool():
    return dataset_stats


def run(tool, config, data_root, tmp_path, *extra):
    out = tmp_path / 'stats.json'
    tool.main([
        osp.join(ROOT, 'configs', config), '--out',
        str(out), '--cfg-options',
        f'train_dataloader.dataset.data_root={data_root}',
        f'test_dataloader.dataset.data_root={data_root}', *extra
    ])
    with open(out) as f:
        return json.load(f)


def counts_of(target, names):
    return {
        name:
        dict(
            positives=int((target[:, i] > 0).sum()),
            negatives=int((target[:, i] == 0).sum()),
            ignored=int((target[:, i] < 0).sum()))
        for i, name in enumerate(names)
    }


def test_vaw_rows_counts_missing_and_skipped(tool, tmp_path, capsys):
    root = F.write_vaw(tmp_path / 'vaw', skip_images=['2415095'])
    stats = run(tool, 'twoway_vaw_r50.py', root, tmp_path)
    names = sorted(F.VAW_ATTRIBUTES, key=F.VAW_ATTRIBUTES.get)
    for split, files in (('train', F.VAW_TRAIN_FILES), ('test',
                                                        ('test.json', ))):
        ids = [
            str(inst['instance_id']) for f in files for inst in F.VAW_FILES[f]
            if str(inst['instance_id']) not in F.VAW_SKIPPED_BOXES
            and str(inst['image_id']) != '2415095'
        ]
        target = torch.full((len(ids), len(names)), -1)
        for row, inst_id in enumerate(ids):
            _, _, pos, neg = F.VAW_EXPECTED[inst_id]
            target[row, neg] = 0
            target[row, pos] = 1
        s = stats[split]
        assert (s['classes'], s['samples']) == (len(names), len(ids))
        assert s['labels_per_sample'] == pytest.approx(
            float((target > 0).sum()) / len(ids))
        assert s['per_class'] == counts_of(target, names)
    missing = stats['train']['missing_images']
    assert len(missing) == 2 and all('2415095' in m for m in missing)
    assert stats['test']['missing_images'] == []
    # Records of the missing image are reported once, as missing.
    assert list(stats['train']['skipped']) == [
        'kept, attribute made ignored: listed as both positive and negative',
        'skipped, less than 1 px of the box inside its image'
    ]
    report = capsys.readouterr().out
    assert 'Table 6 row' in report and 'light colored' in report
    assert '2 image(s) not found' in report


def test_voc_difficult_only_is_ignored_in_test_only(tool, tmp_path):
    root = F.write_voc(tmp_path)
    stats = run(tool, 'twoway_voc07_r50.py', root, tmp_path)
    expected = F.voc_expected(F.VOC07_OBJECTS)
    for split, ids in (('train', F.VOC07_SPLITS['trainval']),
                       ('test', F.VOC07_SPLITS['test'])):
        target = torch.zeros(len(ids), len(F.VOC_CLASSES))
        for row, img_id in enumerate(ids):
            pos, _, difficult_only = expected[img_id]
            # Negative for the loss (default), ignored by the metric.
            target[row, difficult_only] = -1 if split == 'test' else 0
            target[row, pos] = 1
        assert stats[split]['per_class'] == counts_of(target, F.VOC_CLASSES)
    assert stats['test']['per_class']['bottle']['ignored'] == 1


def test_coco_missing_images_are_listed(tool, tmp_path):
    """A dataset without the skip policy is checked by the tool itself."""
    root = tmp_path / 'coco'
    images = [
        dict(id=i, file_name=f'COCO_val2014_{i:012d}.jpg', width=8, height=8)
        for i in (1, 2, 3)
    ]
    F.write_json(
        root / 'annotations' / 'instances_val2014.json',
        dict(
            images=images,
            annotations=[
                dict(
                    id=10 + i,
                    image_id=i,
                    category_id=1 + i % 2,
                    bbox=[0, 0, 2, 2],
                    area=4,
                    iscrowd=0) for i in (1, 2, 3)
            ],
            categories=[dict(id=1, name='person'),
                        dict(id=2, name='bicycle')]))
    for img in images[:2]:
        F.write_jpeg(root / 'val2014' / img['file_name'], 8, 8)
    stats = run(tool, 'twoway_coco_r50.py', root, tmp_path, '--splits', 'test')
    assert list(stats) == ['test']
    assert stats['test']['samples'] == 3
    assert stats['test']['missing_images'] == [
        str(root / 'val2014' / images[2]['file_name'])
    ]
    assert stats['test']['per_class']['person'] == dict(
        positives=1, negatives=2, ignored=0)


def test_every_image_missing_is_an_error_after_the_report(tool, tmp_path,
                                                         capsys):
    """A wrong data_prefix used to print the report and exit 0."""
    import shutil

    from tools.misc.item_pools import digits_item_pool
    from tools.misc.mosaic import write_mosaic_dataset
    root = str(tmp_path / 'demo')
    write_mosaic_dataset(root, digits_item_pool(), 12, 6, seed=0)
    shutil.rmtree(osp.join(root, 'val'))
    with pytest.raises(SystemExit) as exc:
        tool.main([
            osp.join(ROOT, 'configs', 'twoway_demo.py'), '--cfg-options',
            f'train_dataloader.dataset.data_root={root}',
            f'test_dataloader.dataset.data_root={root}'
        ])
    assert str(exc.value.code).startswith(
        'dataset_stats.py: error: no image of the test split (6 missing) '
        'was found. Check data_root and data_prefix')
    report = capsys.readouterr().out
    assert 'test: 6 image(s) not found:' in report
    assert 'train: 0 image(s) not found.' in report
