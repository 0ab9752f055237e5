"""Which torch device a fit trains on: ``"cpu"``, ``"cuda"`` (``"cuda:1"``), ``"mps"``, … or ``"auto"``.

The towers, the loss, its backward and the optimizer live on the device. A step's candidates
(the shuffle, the sampler's draws, the accidental-hit masks) are built on the CPU from CPU
generators and cross to the device once per step, so the same seed draws the same
candidates on every device and ``device="cpu"`` trains exactly as before there were devices
(docs/performance.md, "Devices", lists what crosses and which synchronisations remain).

Example:
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("tpu")
    Traceback (most recent call last):
    ...
    contrec.errors.ConfigError: device 'tpu' is not a torch device ... use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'
"""

from __future__ import annotations

import torch

from contrec.errors import ConfigError

__all__ = ["resolve_device", "device_name", "available_devices", "native_bfloat16", "SlowBfloat16Warning"]


class SlowBfloat16Warning(RuntimeWarning):
    """``precision="bfloat16"`` on a device without fast bfloat16 matmuls: it trains, only slower than float32."""


def _backend_available(kind: str) -> bool:
    if kind == "cpu":
        return True
    if kind == "mps":
        backend = getattr(torch.backends, "mps", None)
        return bool(backend is not None and backend.is_available())
    module = getattr(torch, kind, None)  # torch.cuda, torch.xpu, …
    probe = getattr(module, "is_available", None)
    return bool(probe()) if callable(probe) else False


def available_devices() -> list[str]:
    """The device kinds this torch build can use here, CPU first."""
    return [kind for kind in ("cpu", "cuda", "mps", "xpu") if _backend_available(kind)]


def resolve_device(device: "str | torch.device | None") -> torch.device:
    """``device`` as a `torch.device` this process can use; a one-line `ConfigError` otherwise.

    ``"auto"`` (or None) picks CUDA when a GPU is visible, then Apple's MPS, else the CPU.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        for kind in ("cuda", "mps"):
            if _backend_available(kind):
                return torch.device(kind)
        return torch.device("cpu")
    try:
        resolved = torch.device(device.strip().lower() if isinstance(device, str) else device)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"device {device!r} is not a torch device this build knows; "
                          "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'") from None
    if resolved.type == "meta":
        raise ConfigError("device 'meta' holds shapes, not numbers: a model cannot be trained on it")
    if not _backend_available(resolved.type):
        build = "" if resolved.type != "cuda" or torch.version.cuda else " (this torch build has no CUDA)"
        raise ConfigError(f"device {str(resolved)!r} is not available here{build}; available: "
                          f"{', '.join(available_devices())} (or 'auto')")
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ConfigError(f"device {str(resolved)!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return resolved


def device_name(device: "str | torch.device | None") -> str:
    """The resolved device as a string (what a model records in ``device_``)."""
    return str(resolve_device(device))


def native_bfloat16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices on a fast path (CPU: oneDNN's AVX512 / AMX kernels;
    CUDA: hardware bfloat16; other devices are assumed to have it, unmeasured). Without it
    ``precision="bfloat16"`` still trains, only slower than float32."""
    if device.type == "cpu":
        probe = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
        try:
            return bool(probe()) if probe is not None else False
        except RuntimeError:  # pragma: no cover - a build without oneDNN
            return False
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    return True
