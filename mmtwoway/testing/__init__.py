"""Data generators and helpers for tests, benchmarks and the demo.

Not imported by ``import mmtwoway``: nothing here is needed to train or to
predict, and some of it imports scikit-learn.
"""
