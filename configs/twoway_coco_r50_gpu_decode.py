# configs/twoway_coco_r50.py with the JPEGs decoded on the GPU (nvJPEG via
# torchvision.io.decode_jpeg, the whole batch in one call). The dataloader
# workers only read each file and draw its crop and flip from the header;
# DeviceJpegDataPreprocessor decodes, crops, resizes, flips, jitters, lights
# and normalises on the GPU. Same augmentation as the CPU path.
# Without CUDA the batch is decoded on the CPU of the main process instead
# (decode_device='auto'); decode_device='cuda' makes that an error.
#   tools/dist_train.sh configs/twoway_coco_r50_gpu_decode.py 4
_base_ = ['./twoway_coco_r50.py']

data_preprocessor = dict(type='DeviceJpegDataPreprocessor',
                         decode_device='auto')

# The decode plan travels in the data samples' metainfo.
meta_keys = ('sample_idx', 'img_path', 'ori_shape', 'img_shape',
             'scale_factor', 'flip', 'flip_direction', 'decode_plan')
train_pipeline = [
    dict(type='DecodeRandomResizedCrop', scale=224,
         crop_ratio_range=(0.08, 1.0), flip_prob=0.5,
         decode_on_device=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='DecodeResizeCenterCrop', resize=256, crop_size=224,
         decode_on_device=True),
    dict(type='PackInputs', meta_keys=meta_keys),
]

# Encoded files differ in length: the batch is a list, not a stacked tensor.
train_dataloader = dict(
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(
    collate_fn=dict(type='pseudo_collate'),
    dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
