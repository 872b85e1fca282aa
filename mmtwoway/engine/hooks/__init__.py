from .class_frequency_hook import ClassFrequencyHook, count_labels

__all__ = ['ClassFrequencyHook', 'count_labels']
