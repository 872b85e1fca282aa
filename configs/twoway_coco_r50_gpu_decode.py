# configs/twoway_coco_r50.py with the JPEGs nvJPEG decodes (8-bit Huffman
# baseline / extended / progressive, YCbCr or grey) decoded on the GPU, the
# rest in the workers; the stream is drained before each hardware decode
# (an upstream defect) and a file the device refuses is decoded on the CPU.
# See docs/data_pipeline.md. Without CUDA the main process decodes.
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
