"""Benchmarks (``make bench``): each figure is a median against a peer measured in the same run."""
