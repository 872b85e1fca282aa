# WIDER Attribute: 14 person attributes, one sample per person box: 28,340
# trainval / 29,117 test boxes in Table 6, 2.9 positive labels per box.
# CropInstance runs right after loading, then the paper's pipeline of
# coco.py. Values 1 / -1 / 0 are positive / negative / ignored. Boxes with
# less than 1 px of width or height inside their image are dropped (counted
# in the log); boxes partly outside are clipped.
#   data/wider/wider_attribute_trainval.json, wider_attribute_test.json
#   data/wider/Image/{train,val,test}/<scene>/*.jpg
# Image sizes are cached in data/wider/.mmtwoway_cache/.
_base_ = ['./coco.py']

dataset_type = 'WIDERAttribute'
data_root = 'data/wider'

data_preprocessor = dict(num_classes=14)

# The first step crops the person box (as CropInstance: context=1.0
# crops exactly the box, 1.2 adds 10% on every side), then coco.py's crop.
train_pipeline = [
    dict(_base_.train_pipeline[0], instance_context=1.0),
    *_base_.train_pipeline[1:]
]
test_pipeline = [
    dict(_base_.test_pipeline[0], instance_context=1.0),
    *_base_.test_pipeline[1:]
]

train_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        # train/ and val/ images together, as in the paper.
        ann_file='wider_attribute_trainval.json',
        data_prefix=dict(img_path='Image'),
        pipeline=train_pipeline))

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='wider_attribute_test.json',
        data_prefix=dict(img_path='Image'),
        test_mode=True,
        pipeline=test_pipeline))

test_dataloader = val_dataloader
