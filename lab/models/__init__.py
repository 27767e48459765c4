"""Model registry and architectures; every family module is imported here so its presets register."""

from lab.models import (  # noqa: F401  (registration)
    deblur,
    discriminators,
    drln,
    edsr,
    fsrcnn,
    imdn,
    rcan,
    rdn,
    resnet_sr,
    srcnn,
    srresnet,
    vdsr,
    wrappers,
)
from lab.models.checkpoints import (
    checkpoint_payload,
    init_from_checkpoint,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from lab.models.loading import load_model
from lab.models.pretrained import load_pretrained
from lab.models.profile import fits_budget, layer_table, profile
from lab.models.registry import MODELS, create, list_models, model_entrypoint, register_model

__all__ = ["MODELS", "create", "list_models", "load_checkpoint", "model_entrypoint", "register_model",
           "save_checkpoint", "checkpoint_payload", "read_checkpoint", "init_from_checkpoint", "load_pretrained",
           "load_model", "profile", "layer_table", "fits_budget"]
