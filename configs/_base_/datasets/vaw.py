# VAW (Visual Attributes in the Wild): 620 attributes of object instances,
# train_part1 + train_part2 + val = 229,076 / test 31,819 instances, 1.8
# positive labels per instance (Table 6). A sample is the crop of one
# instance box: CropInstance runs right after loading, then the paper's
# pipeline of coco.py. Negative attributes are 0, unlabelled ones ignored.
#   data/vaw/data/{train_part1,train_part2,val,test}.json and
#   data/vaw/data/attribute_index.json (github.com/adobe-research/vaw_dataset)
#   data/vaw/VG_100K/, data/vaw/VG_100K_2/ (Visual Genome 1.4 images)
# The instance files and image sizes are cached in data/vaw/.mmtwoway_cache/.
_base_ = ['./coco.py']

dataset_type = 'VAW'
data_root = 'data/vaw'

data_preprocessor = dict(num_classes=620)

# The first step crops the instance box (as CropInstance: context=1.0
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
        ann_file=[
            'data/train_part1.json', 'data/train_part2.json', 'data/val.json'
        ],
        attribute_file='data/attribute_index.json',
        img_dirs=['VG_100K', 'VG_100K_2'],
        pipeline=train_pipeline))

val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='data/test.json',
        attribute_file='data/attribute_index.json',
        img_dirs=['VG_100K', 'VG_100K_2'],
        test_mode=True,
        pipeline=test_pipeline))

test_dataloader = val_dataloader
