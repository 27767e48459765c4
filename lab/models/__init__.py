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
from lab.models.pretrained import load_pretrained
from lab.models.profile import fits_budget, layer_table, profile
from lab.models.registry import (
    create,
    init_from_checkpoint,
    list_models,
    load_checkpoint,
    model_entrypoint,
    register_model,
    save_checkpoint,
)

__all__ = ["create", "list_models", "load_checkpoint", "model_entrypoint", "register_model", "save_checkpoint",
           "init_from_checkpoint", "load_pretrained", "profile", "layer_table", "fits_budget"]
