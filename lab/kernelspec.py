"""The Jupyter kernel every notebook names (`restoration-lab`): found, or registered for this Python on first use,
so `lab run`, `lab jupyter` and a bare `papermill notebooks/train.ipynb out.ipynb` run the lab, never another
interpreter by a silent fallback."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

KERNEL_NAME = "restoration-lab"
DISPLAY_NAME = "Python (restoration-lab)"


def _runnable(argv: list[str]) -> bool:
    exe = argv[0] if argv else ""
    return bool(exe) and (Path(exe).is_file() or shutil.which(exe) is not None)


def in_environment() -> bool:
    """Whether this Python is a virtual or conda environment (its kernels then go in sys.prefix, not the user's)."""
    return sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir()


def find_kernel(name: str = KERNEL_NAME) -> Path | None:
    """The folder of kernel `name` whose interpreter exists, or None."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return Path(spec.resource_dir) if _runnable(spec.argv) else None


def register_kernel(name: str = KERNEL_NAME) -> Path:
    """Register kernel `name` for this Python: in its environment (venv, conda), else for the user."""
    from ipykernel.kernelspec import install

    where = {"prefix": sys.prefix} if in_environment() else {"user": True}
    try:
        return Path(install(kernel_name=name, display_name=DISPLAY_NAME, **where))
    except OSError as e:
        raise OSError(f"the Jupyter kernel {name!r} is not installed and could not be registered ({e}); register it "
                      f"with: {sys.executable} -m ipykernel install --user --name {name}") from None


def ensure_kernel(name: str = KERNEL_NAME, announce: bool = True) -> str:
    """The kernel `name`, registered for this Python when missing or broken (its interpreter gone); one line on
    stderr says where when it is registered (unless `announce` is False)."""
    if find_kernel(name) is None:
        path = register_kernel(name)
        if announce:
            print(f"registered the Jupyter kernel {name!r} for {sys.executable} (in {path})", file=sys.stderr)
        if find_kernel(name) is None:  # a broken spec of the same name earlier on Jupyter's path shadows ours
            raise OSError(f"the Jupyter kernel {name!r} found first on Jupyter's path cannot start (its Python is "
                          f"gone); remove it (jupyter kernelspec remove {name}) and run the lab again")
    return name


def kernel_of(nb_path: str | os.PathLike) -> str:
    """The kernel notebook `nb_path` names: ours is registered when missing; any other must be installed."""
    import json

    from jupyter_client.kernelspec import find_kernel_specs

    name = json.loads(Path(nb_path).read_text(encoding="utf-8"))["metadata"].get("kernelspec", {}).get("name")
    if not name:
        raise ValueError(f"notebook {str(nb_path)!r} names no kernel (metadata.kernelspec.name); set it to "
                         f"{KERNEL_NAME!r}")
    if name == KERNEL_NAME:
        return ensure_kernel(name)
    if name not in find_kernel_specs():
        raise ValueError(f"notebook {str(nb_path)!r} names the Jupyter kernel {name!r}, which is not installed "
                         f"(installed: {', '.join(sorted(find_kernel_specs()))}); use {KERNEL_NAME!r}")
    return name
