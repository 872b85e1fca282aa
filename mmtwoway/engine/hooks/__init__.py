from .class_frequency_hook import ClassFrequencyHook, count_labels
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook
from .non_finite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .train_settings_hook import (TrainSettingsError, TrainSettingsHook,
                                  check_runner, check_train_settings,
                                  check_work_dir)

__all__ = [
    'ClassFrequencyHook', 'count_labels', 'DeferredRuntimeInfoHook',
    'NonFiniteLossHook', 'NonFiniteLossError', 'TrainSettingsHook',
    'TrainSettingsError', 'check_runner', 'check_train_settings',
    'check_work_dir'
]
