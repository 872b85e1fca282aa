from .class_frequency_hook import ClassFrequencyHook, count_labels
from .deferred_runtime_info_hook import DeferredRuntimeInfoHook

__all__ = ['ClassFrequencyHook', 'count_labels', 'DeferredRuntimeInfoHook']
