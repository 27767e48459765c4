"""Restoration Lab: fastai learners, degradations, metrics and a run ledger for image restoration."""

__version__ = "0.1.0"
