"""Command-line tools; importable (`import tools.misc.dataset_stats`) for the tests."""
