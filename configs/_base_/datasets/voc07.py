# PASCAL VOC 2007 multi-label classification: 20 classes, trainval 5,011 /
# test 4,952 images, 1.4 labels per image (Table 6). The paper's pipeline and
# loaders come from coco.py; only the dataset changes.
#   data/VOCdevkit/VOC2007/{Annotations,JPEGImages,ImageSets/Main}
# (the test tarball extracts into the same folder).
_base_ = ['./coco.py']

dataset_type = 'VOCMultiLabel'
data_root = 'data/VOCdevkit/VOC2007'

data_preprocessor = dict(num_classes=20)

train_pipeline = _base_.train_pipeline
# MultiLabelMAP ignores the classes seen only on difficult objects; it
# finds them in gt_label_difficult, which PackInputs must keep.
test_pipeline = [
    *_base_.test_pipeline[:-1],
    dict(
        type='PackInputs',
        meta_keys=('sample_idx', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction',
                   'gt_label_difficult')),
]

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='trainval',
        # Difficult-only classes are negatives for the loss (common
        # practice); 'ignore' leaves them out of the loss instead.
        difficult_as='negative',
        pipeline=train_pipeline))

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        split='test',
        test_mode=True,
        pipeline=test_pipeline))
# Difficult-only classes are neither positive nor negative in the mAPs.
val_evaluator = [
    dict(type='MultiLabelMAP', difficult_as='ignore'),
    dict(type='MultiLabelF1', difficult_as='ignore')
]

test_dataloader = val_dataloader
test_evaluator = val_evaluator
