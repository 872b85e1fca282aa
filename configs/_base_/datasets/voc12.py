# PASCAL VOC 2012 multi-label classification: 20 classes, train 5,717 / val
# 5,823 images (Table 6; VOC2012 test labels are not public, so the paper
# tests on val). Everything else as in voc07.py.
#   data/VOCdevkit/VOC2012/{Annotations,JPEGImages,ImageSets/Main}
_base_ = ['./voc07.py']

data_root = 'data/VOCdevkit/VOC2012'

train_dataloader = dict(dataset=dict(data_root=data_root, split='train'))
val_dataloader = dict(dataset=dict(data_root=data_root, split='val'))
test_dataloader = val_dataloader
