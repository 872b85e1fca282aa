"""MultiLabelCsvDataset on CSV / TSV files written as a user would."""
import os.path as osp
import re

import numpy as np
import pytest
import torch

from mmpretrain.registry import DATASETS
from mmtwoway.datasets import MultiLabelCsvDataset

import original_formats as F
from label_checks import assert_ignored_entries_ignored, packed_samples

CLASSES = ('cat', 'dog', 'person', 'sky')
PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(8, 8)),
    dict(type='PackInputs')
]


def write(root, name: str, text: str, images=('a.jpg', 'b.jpg', 'c.jpg')):
    """Write ``text`` to ``root/name`` and the images under root/img/."""
    for i, image in enumerate(images):
        F.write_jpeg(osp.join(root, 'img', image), 12, 10, seed=i)
    path = osp.join(root, name)
    with open(path, 'w', encoding='utf-8', newline='') as f:
        f.write(text)
    return path


def build(root, name='train.csv', **kwargs):
    return MultiLabelCsvDataset(
        name, data_root=str(root), data_prefix='img', **kwargs)


def test_fully_labelled_classes_from_the_file(tmp_path):
    write(tmp_path, 'train.csv', 'image,labels,photographer\n'
          'a.jpg,sky|cat,ann\n'
          'b.jpg,,bob\n'
          '\n'
          'c.jpg, dog | sky |,\n')
    ds = build(tmp_path)
    # sorted union of the names; blank line skipped, spaces and stray | too
    assert ds.CLASSES == ('cat', 'dog', 'sky') and len(ds) == 3
    infos = [ds.get_data_info(i) for i in range(3)]
    assert [i['gt_label'] for i in infos] == [[0, 2], [], [1, 2]]
    assert [i['csv_line'] for i in infos] == [2, 3, 5]
    assert [i['photographer'] for i in infos] == ['ann', 'bob', '']
    assert infos[0]['img_path'] == osp.join(str(tmp_path), 'img', 'a.jpg')
    # fully labelled: no gt_score, every other class negative
    assert all('gt_score' not in i for i in infos)
    assert ds.get_cat_ids(0) == [0, 2]


def test_negatives_column_leaves_the_rest_ignored(tmp_path):
    write(tmp_path, 'train.csv', 'image,labels,negatives\n'
          'a.jpg,cat,dog|sky\n'
          'b.jpg,,person\n'
          'c.jpg,sky|person,\n')
    ds = build(tmp_path, classes=list(CLASSES), pipeline=PIPELINE)
    expected = torch.tensor([[1, 0, -1, 0], [-1, -1, 0, -1],
                             [-1, -1, 1, 1]]).float()
    for i in range(3):
        np.testing.assert_array_equal(
            ds.get_data_info(i)['gt_score'], expected[i].numpy())
    # through PackInputs, the head's target, the loss and the metric
    assert_ignored_entries_ignored(packed_samples(ds), expected)


def test_ignored_column_leaves_the_rest_negative(tmp_path):
    write(
        tmp_path, 'train.tsv', 'image\tlabels\tignored\tnote\n'
        'a.jpg\tcat\tdog|sky\tx, with a comma\n'
        'b.jpg\t\t\t\n'
        'c.jpg\tsky|person\tcat\t\n')
    ds = build(tmp_path, 'train.tsv', classes=CLASSES, pipeline=PIPELINE)
    expected = torch.tensor([[1, -1, 0, -1], [0, 0, 0, 0],
                             [-1, 0, 1, 1]]).float()
    assert ds.get_data_info(0)['note'] == 'x, with a comma'
    assert ds.get_data_info(1)['ignored_label'] == []
    assert_ignored_entries_ignored(packed_samples(ds), expected)


def test_class_file_relative_to_data_root_and_quoted_cells(tmp_path):
    with open(tmp_path / 'classes.txt', 'w') as f:
        f.write('sky\ncat\n\nperson\ndog\n')
    # Excel's byte-order mark, quoted cells, a cell spanning two lines
    write(tmp_path, 'train.csv', '\ufeffimage,labels,negatives,comment\n'
          '"a.jpg","cat|dog",sky,"two\nlines"\n'
          'b.jpg,person,,\n')
    ds = DATASETS.build(
        dict(
            type='MultiLabelCsvDataset',
            ann_file='train.csv',
            classes='classes.txt',
            data_root=str(tmp_path),
            data_prefix=dict(img_path='img')))
    assert ds.CLASSES == ('sky', 'cat', 'person', 'dog')
    assert ds.get_data_info(0)['gt_label'] == [1, 3]
    assert ds.get_data_info(0)['comment'] == 'two\nlines'
    assert ds.get_data_info(1)['csv_line'] == 4
    np.testing.assert_array_equal(
        ds.get_data_info(1)['gt_score'], [-1, -1, 1, -1])


def test_absolute_image_paths(tmp_path):
    image = str(tmp_path / 'img' / 'a.jpg')
    write(tmp_path, 'list.csv', f'labels,image\ncat,{image}\n',
          images=('a.jpg', ))
    ds = MultiLabelCsvDataset(str(tmp_path / 'list.csv'),
                              data_prefix='/elsewhere')
    assert ds.get_data_info(0)['img_path'] == image
    # mmpretrain's metainfo=dict(classes=...) works as `classes` does
    ds = MultiLabelCsvDataset(
        str(tmp_path / 'list.csv'), metainfo=dict(classes=('dog', 'cat')))
    assert ds.CLASSES == ('dog', 'cat')
    assert ds.get_data_info(0)['gt_label'] == [1]


@pytest.mark.parametrize('text, kwargs, error, match', [
    ('', {}, ValueError, r'train.csv" is empty'),
    ('image,labels\n', {}, ValueError, 'no sample row'),
    ('img,labels\na.jpg,cat\n', {}, ValueError,
     r'line 1: no column\(s\) \[\'image\'\]'),
    ('image,tags\na.jpg,cat\n', {}, ValueError,
     r"no column\(s\) \['labels'\]"),
    ('image,labels,labels\na.jpg,cat,dog\n', {}, ValueError,
     r"repeats the column\(s\) \['labels'\]"),
    ('image,labels,gt_label\na.jpg,cat,1\n', {}, ValueError,
     r"the column\(s\) \['gt_label'\] would replace"),
    ('image,labels\na.jpg,cat\nb.jpg,cat,dog\n', {}, ValueError,
     'line 3 has 3 cells but the header has 2'),
    ('image,labels\na.jpg,cat\n,dog\n', {}, ValueError,
     'line 3: the "image" cell is empty'),
    ('image,labels\na.jpg,cat\nb.jpg,dog\na.jpg,sky\n', {}, ValueError,
     'line 4: image "a.jpg" is already listed on line 2'),
    ('image,labels,negatives\na.jpg,cat,sky\nb.jpg,dog|sky,sky\n', {},
     ValueError, 'line 3: class "sky" is in both "labels" and "negatives"'),
    ('image,labels,ignored\na.jpg,cat|cow,\n', dict(classes=CLASSES),
     ValueError, r"line 2: \"labels\" has \['cow'\], not among the 4 "
     r'classes of `classes`'),
    ('image,labels,negatives\na.jpg,cat,\n,,\nb.jpg,,dog\n', {}, None, None),
    ('image,labels\na.jpg,\n', {}, ValueError, 'names no class'),
    ('image,labels\na.jpg,cat\n', dict(classes=['cat', 'cat']), ValueError,
     'class "cat" is listed twice'),
    ('image,labels\na.jpg,cat\n', dict(classes=['cat', 'a|b']), ValueError,
     'contains "|"'),
    ('image,labels\na.jpg,cat\n', dict(classes='none.txt'),
     FileNotFoundError, r'class file ".*none.txt" not found'),
])
def test_bad_files_name_file_and_line(tmp_path, text, kwargs, error, match):
    write(tmp_path, 'train.csv', text)
    if error is None:  # the all-empty row ",," is skipped, not an error
        assert len(build(tmp_path, **kwargs)) == 2
        return
    with pytest.raises(error, match=match) as info:
        build(tmp_path, **kwargs)
    if 'class file' not in match and 'listed twice' not in match and \
            '"|"' not in match:
        assert 'train.csv' in str(info.value)


def test_unknown_class_names_the_class_file(tmp_path):
    with open(tmp_path / 'classes.txt', 'w') as f:
        f.write('cat\ndog\n')
    write(tmp_path, 'train.csv', 'image,labels,negatives\n'
          'a.jpg,cat,\n'
          'b.jpg,dog,cow\n')
    with pytest.raises(ValueError, match=r'train.csv", line 3: "negatives" '
                       r"has \['cow'\], not among the 2 classes of class "
                       r'file ".*classes.txt"'):
        build(tmp_path, classes='classes.txt')


def test_missing_file_and_missing_images(tmp_path):
    with pytest.raises(FileNotFoundError, match='nothing.csv" not found'):
        build(tmp_path, 'nothing.csv')
    write(tmp_path, 'train.csv', 'image,labels\n'
          'a.jpg,cat\n'
          'gone.jpg,dog\n'
          'b.jpg,dog\n')
    with pytest.raises(FileNotFoundError,
                       match=r'1 image file\(s\) .* train.csv line 3 '
                       r'\(.*gone.jpg\).*missing_images="skip"'):
        build(tmp_path)
    ds = build(tmp_path, missing_images='skip')
    assert [ds.get_data_info(i)['csv_line'] for i in range(len(ds))] == [2, 4]
    assert ds.skipped.counts() == {'skipped, image not found': 1}
    # the class list still has the class of the skipped image
    assert ds.CLASSES == ('cat', 'dog')
    with pytest.raises(ValueError, match='missing_images must be one of'):
        build(tmp_path, missing_images='ignore')


def test_the_own_data_doc_excerpt(tmp_path):
    """The CSV of docs/own_data.md means what the page says."""
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    with open(osp.join(root, 'docs', 'own_data.md'), encoding='utf-8') as f:
        section = f.read()
    text = re.search(r'```\n\s*(image,labels.*?)```', section, re.S).group(1)
    text = '\n'.join(line.strip() for line in text.splitlines()) + '\n'
    write(tmp_path, 'train.csv', text,
          images=('beach/0001.jpg', 'beach/0002.jpg', 'park/0107.jpg'))
    ds = build(tmp_path)
    assert ds.CLASSES == ('dog', 'person', 'sea', 'sky')
    scores = [ds.get_data_info(i)['gt_score'].tolist() for i in range(3)]
    assert scores == [[0, 1, 1, 1], [-1, -1, 1, -1], [0, 0, -1, -1]]
    assert ds.get_data_info(1)['photographer'] == 'bob'


# ------------------------------------------- one class list for every split


def test_classes_from_gives_val_the_training_list(tmp_path):
    write(tmp_path, 'train.csv', 'image,labels\na.jpg,sky|cat\nb.jpg,dog\n')
    # val lacks "dog": its own sorted names would shift "sky" to index 1
    write(tmp_path, 'val.csv', 'image,labels\nc.jpg,sky\n')
    train = build(tmp_path)
    val = build(tmp_path, 'val.csv', classes_from='train.csv')
    assert val.metainfo['classes'] == train.metainfo['classes'] == (
        'cat', 'dog', 'sky')
    assert val.get_data_info(0)['gt_label'] == [2]
    assert 'classes_from' in val.class_source
    # without it, each split sorts its own names: the shift the hook refuses
    assert build(tmp_path, 'val.csv').metainfo['classes'] == ('sky', )


def test_a_val_class_the_training_file_lacks_names_both_files(tmp_path):
    write(tmp_path, 'train.csv', 'image,labels\na.jpg,sky|cat\nb.jpg,cat\n')
    write(tmp_path, 'val.csv', 'image,labels\nc.jpg,sky\na.jpg,bird|cat\n')
    with pytest.raises(ValueError) as err:
        build(tmp_path, 'val.csv', classes_from='train.csv')
    message = str(err.value)
    assert "['bird']" in message and 'line 3' in message
    assert osp.join(str(tmp_path), 'val.csv') in message
    assert osp.join(str(tmp_path), 'train.csv') in message
    # an explicit class list takes precedence: the val class is then known
    val = build(tmp_path, 'val.csv', classes=['bird', 'cat', 'sky'],
                classes_from='train.csv')
    assert val.get_data_info(1)['gt_label'] == [0, 1]


def test_rows_without_any_label_are_counted(tmp_path):
    write(tmp_path, 'train.csv', 'image,labels,negatives\n'
          'a.jpg,cat,\n'
          'b.jpg,,\n'
          'c.jpg,,dog\n')
    ds = build(tmp_path)
    assert ds.unlabelled_lines == [3]
    assert ds.summary().endswith('1 row(s) naming no class (e.g. line 3)')
    assert '3 images, 2 classes' in ds.summary()
