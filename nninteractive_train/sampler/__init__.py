"""Sampling training targets from a collection: dataset → case → SuperVoxel or real object (see ``tables``)."""

from .collection import collection_sampler, load_collection
from .object_sampler import Draw, DrawBatch, ObjectSampler
from .tables import SamplingTables, object_probabilities, sampling_tables

__all__ = ["Draw", "DrawBatch", "ObjectSampler", "SamplingTables", "collection_sampler", "load_collection",
           "object_probabilities", "sampling_tables"]
