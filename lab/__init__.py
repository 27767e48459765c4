"""Restoration Lab: fastai learners, degradations, metrics and a run ledger for image restoration."""

import warnings

__version__ = "0.1.0"

# Known third-party notices that say nothing about the user's experiment, silenced by message and module only:
# fastai 2.8 decorates functions with torch.jit.script at import (deprecated in torch 2.14), fastai's GANTrainer
# sets attributes that shadow its learner's on every GAN fit, and fastai.tabular sets a pandas option pandas 3
# no longer has.
warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated", category=FutureWarning,
                        module=r"torch\.jit\._script")
warnings.filterwarnings("ignore", message=r"You are shadowing an attribute \((generator|critic|gen_mode)\)",
                        category=UserWarning, module=r"fastai\.callback\.core")
warnings.filterwarnings("ignore", message=r"The 'mode\.chained_assignment' option is deprecated",
                        module=r"fastai\.tabular")
