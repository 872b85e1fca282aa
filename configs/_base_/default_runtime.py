# Runtime shared by every mmtwoway config.
default_scope = 'mmpretrain'
# The stack fixes first (docs/stack_fixes.md): resume on torch >= 2.6, CPU
# DDP; `import mmtwoway` itself only registers mmtwoway's modules.
custom_imports = dict(
    imports=['mmtwoway_stack_fixes', 'mmtwoway'], allow_failed_imports=False)

default_hooks = dict(
    # Losses stay on the GPU until the logger reads them (no host sync per
    # iteration); the log lines are those of mmengine's RuntimeInfoHook.
    runtime_info=dict(type='DeferredRuntimeInfoHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        interval=1,
        max_keep_ckpts=2,
        save_best='multi-label/mAP@class',
        rule='greater'),
    # Reshuffle every epoch (the authors' code never called set_epoch).
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='VisualizationHook', enable=False),
    # In distributed runs every rank would validate with its own BatchNorm
    # running statistics (DDP broadcasts buffers only at training forwards)
    # while the checkpoint holds rank 0's: averaging them after each epoch,
    # before the checkpoint and validation, makes the printed metric the
    # saved model's. A no-op on one process.
    sync_buffers=dict(type='SyncBuffersHook'),
)

# mmtwoway's checks: the loss settings against the data before the first
# iteration (TrainSettingsHook), and a stop at the first non-finite loss.
custom_hooks = [
    dict(type='TrainSettingsHook'),
    dict(type='NonFiniteLossHook'),
]

env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # Without CUDA, tools/train.py switches to gloo (and
    # mmtwoway_stack_fixes lets mmengine's launcher run on the CPU).
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
