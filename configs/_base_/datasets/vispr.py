# VISPR2017 privacy attributes: 68 classes, train2017 + val2017 = 14,167 /
# test2017 8,000 images, 5.2 labels per image (Table 6). The paper's
# pipeline and loaders come from coco.py; only the dataset changes.
#   data/vispr/{train2017,val2017,test2017}.txt, attributes.tsv,
#   annotations/<split>/*.json, images/<split>/*.jpg
# The per-image JSON files are parsed once and cached in
# data/vispr/.mmtwoway_cache/.
_base_ = ['./coco.py']

dataset_type = 'VISPR'
data_root = 'data/vispr'

data_preprocessor = dict(num_classes=68)

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file=['train2017.txt', 'val2017.txt'],
        # From github.com/tribhuvanesh/vpa; class index = its idx column.
        attributes_file='attributes.tsv',
        pipeline=_base_.train_pipeline))

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='test2017.txt',
        attributes_file='attributes.tsv',
        test_mode=True,
        pipeline=_base_.test_pipeline))

test_dataloader = val_dataloader
