# The paper's fine-tuning schedule (Sec. 4.1): SGD (Nesterov) momentum 0.9,
# weight decay 1e-4, lr 0.001 for the backbone and 10x (0.01) for the
# classifier, cosine decay stepped every iteration, 40 epochs, AMP.
# `fused=True`: one kernel for the update, the same SGD to float rounding;
# with fp16 AMP it takes the scaler's inf flag on the device, so the step
# never reads it on the host (docs/gpu.md).
optim_wrapper = dict(
    # tools/train.py switches to a plain OptimWrapper on machines without
    # CUDA, where mmengine's AMP wrapper cannot run.
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(
        type='SGD',
        lr=0.001,
        momentum=0.9,
        weight_decay=1e-4,
        nesterov=True,
        fused=True),
    paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.0)}),
)

param_scheduler = dict(
    type='CosineAnnealingLR',
    T_max=40,
    eta_min=0.0,
    by_epoch=True,
    begin=0,
    end=40,
    convert_to_iter_based=True)

train_cfg = dict(by_epoch=True, max_epochs=40, val_interval=5)
val_cfg = dict()
test_cfg = dict()

# The schedule is tuned for a global batch of 512 (4 GPUs x 128);
# `--auto-scale-lr` scales the lr linearly for other global batches.
auto_scale_lr = dict(base_batch_size=512, enable=False)
