"""Colour spaces a shot contract may state, and the generative backend's way into its model's
working space and back, with OpenColorIO's built-in configs (no config file is read from a
request, nothing is downloaded).

Camera log footage (ARRI LogC3/LogC4, S-Log3, ACEScct, ...) is usually tagged BT.709 in its
file, so only the contract can say what its code values mean. A video model was trained on
display-referred pictures: the diffusers backend converts the source's code values from the
contract's colour space into MODEL_SPACE (sRGB-encoded Rec.709), lets the model work there, and
converts its output back with the exact inverse processor. Values the model space cannot hold
(outside 0..1 there) are clipped on the way in; how many is measured and the color_clip gate
flags a take where it matters. The classic backend never converts: it works on the source's
own code values.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools

import numpy as np

DEFAULT_CONFIG = "ocio://studio-config-latest"
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"
# libavutil AVCOL_TRC values a file may state that no SDR/log colour space can mean
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}
_LINEAR_TRANSFER = 8


class ColorError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@functools.lru_cache(maxsize=4)
def _config(uri: str):
    try:
        import PyOpenColorIO as ocio
    except ImportError:
        raise ColorError("color_unavailable", "colour spaces need OpenColorIO: install takebridge[diffusers] "
                                              "(the opencolorio package)") from None
    try:
        return ocio.Config.CreateFromFile(uri)
    except Exception as err:   # OCIO raises its own Exception type
        raise ColorError("bad_color_config", f"OpenColorIO config {uri!r} cannot be loaded ({err}); use a built-in "
                                             f"one such as {DEFAULT_CONFIG}") from None


@dataclasses.dataclass(frozen=True)
class ColorTransform:
    """From the source's code values in `input_space` to MODEL_SPACE and back (float RGB)."""

    config: str
    input_space: str

    def _processor(self, source: str, target: str):
        return _config(self.config).getProcessor(source, target).getDefaultCPUProcessor()

    def to_model(self, codes: np.ndarray) -> np.ndarray:
        """(H, W, 3) code values 0..1 (float32) -> model-space values, unclipped."""
        out = np.ascontiguousarray(codes, dtype=np.float32).copy()
        self._processor(self.input_space, MODEL_SPACE).applyRGB(out)
        return out

    def from_model(self, values: np.ndarray) -> np.ndarray:
        """The exact inverse of to_model."""
        out = np.ascontiguousarray(values, dtype=np.float32).copy()
        self._processor(MODEL_SPACE, self.input_space).applyRGB(out)
        return out

    def describe(self) -> dict:
        return {"config": self.config, "input_space": self.input_space, "model_space": MODEL_SPACE,
                "forward": f"{self.input_space} -> {MODEL_SPACE}", "inverse": f"{MODEL_SPACE} -> {self.input_space}"}


def resolve(input_space: str, config: str = "", transfer: int = 2) -> ColorTransform | None:
    """The transform a contract's ColorSpec asks for (None when it names no colour space); a
    ColorError naming the value when the config is not a built-in, the name is not one of its
    colour spaces (the closest names are offered), or the file's own transfer tag contradicts it."""
    if not input_space:
        return None
    config = config or DEFAULT_CONFIG
    if not config.startswith("ocio://"):
        raise ColorError("bad_color_config", f"colour config {config[:200]!r} is not a built-in OpenColorIO config; "
                                             f"use an ocio:// name such as {DEFAULT_CONFIG} (files are not read "
                                             f"from requests)")
    cfg = _config(config)
    space = cfg.getColorSpace(input_space)
    if space is None:
        names = [c.getName() for c in cfg.getColorSpaces()]
        close = difflib.get_close_matches(input_space, names, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(n) for n in close)}?" if close else ""
        raise ColorError("unknown_color_space", f"colour space {input_space[:200]!r} is not in {config}{hint} "
                                                f"(it has {len(names)}, e.g. 'ARRI LogC4', 'S-Log3 S-Gamut3', "
                                                f"'ACEScct', 'Rec.1886 Rec.709 - Display')")
    name = space.getName()
    lowered = name.lower()
    if transfer in _HDR_TRANSFERS and not any(k in lowered for k in ("pq", "hlg", "2084", "2100")):
        raise ColorError("color_contradiction", f"the shot contract says the source is {name!r}, but the file is "
                                                f"tagged {_HDR_TRANSFERS[transfer]}; state the colour space the "
                                                f"footage really is, or retag the file")
    if transfer == _LINEAR_TRANSFER and not any(k in lowered for k in ("linear", "aces2065", "acescg")):
        raise ColorError("color_contradiction", f"the shot contract says the source is {name!r}, but the file is "
                                                f"tagged linear light; state a linear colour space or retag the file")
    return ColorTransform(config, name)


def codes_of(frames: np.ndarray) -> np.ndarray:
    """Integer code values as floats 0..1."""
    top = 255.0 if frames.dtype == np.uint8 else 65535.0
    return frames.astype(np.float32) / np.float32(top)


def frames_of(codes: np.ndarray, dtype) -> np.ndarray:
    top = 255.0 if np.dtype(dtype) == np.uint8 else 65535.0
    return np.clip(np.rint(codes * top), 0, top).astype(dtype)
