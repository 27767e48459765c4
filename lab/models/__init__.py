"""Model registry and architectures; every family module is imported here so its presets register."""

from lab.models.registry import (
    create,
    list_models,
    load_checkpoint,
    model_entrypoint,
    register_model,
    save_checkpoint,
)
from lab.models import srcnn, edsr  # noqa: F401  (registration)

__all__ = ["create", "list_models", "load_checkpoint", "model_entrypoint", "register_model", "save_checkpoint"]
from lab.models import deblur, discriminators  # noqa: F401,E402  (registration)
from lab.models.profile import fits_budget, layer_table, profile  # noqa: E402

__all__ += ["profile", "layer_table", "fits_budget"]
from lab.models import fsrcnn, vdsr, srresnet, rdn, rcan, resnet_sr, imdn, drln  # noqa: F401,E402  (registration)
from lab.models.pretrained import load_pretrained  # noqa: E402

__all__ += ["load_pretrained"]
