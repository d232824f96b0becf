"""Hook between a built collection (manifest + sampler) and the data loader.

A dataset built by ``nnInteractive_build_collection`` carries a manifest; its objects are then drawn by the
collection sampler. Any other dataset trains on connected components of its labels.
"""

from __future__ import annotations


def sampler_factory_for(trainer, identifiers):
    """A picklable ``(seed_sequence) -> sampler`` for the loader, or None when the dataset has no manifest."""
    return None
