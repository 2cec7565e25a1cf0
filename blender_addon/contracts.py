"""Shot contracts in the panel (bridge/contract.py).

Load sets the panel from a contract file (.toml or .json): prompt, negative prompt, seed (none:
the seed unlocked), fallback, codec, Generate's mode, camera move and amount, reference images
(those the contract lists stand in for the panel's), and, where the contract names them, burn-in,
backend, model, take folder and mask feather. Its other fields (role, purpose, characters,
must-not-change, keep frames, duration, the shot's size, a board image, review thresholds,
budget) have no widget: they are kept in the scene as contract JSON (`contract_extra`), go with
every job and are saved again. A contract that cannot be used is refused whole, naming the value,
and the panel is left as it was.

Save writes the contract of the panel's options (JSON). The character library a shot's
characters come from is characters.toml (or .json) beside the .blend.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path

import bpy

from . import props
from .bridge_import import tb

names = importlib.import_module(f"{tb.name}.api.names")

# the contract's fields the panel has widgets for; everything else is kept
SHOWN = {"prompt", "negative_prompt", "seed", "fallback", "codec", "mode", "burn_in", "backend", "model",
         "take_dir", "references", "schema"}
SHOWN_CONSTRAINTS = {"camera", "camera_amount", "mask_feather_px"}
SEED_MAX = 2 ** 31 - 1          # the panel's seed
FEATHER_MAX = 64                # the panel's mask feather


def _error(message: str):
    return tb.contract.ContractError(message)


def _panel_values(contract: dict, name: str) -> dict:
    """The panel's new values from a contract, each checked; nothing is set here."""
    full = tb.contract.apply_contract(tb.request.JobOptions(), contract)
    values = {"prompt": full.prompt, "negative_prompt": full.negative_prompt}
    if full.seed is None:
        values["seed_lock"] = False
    elif not 0 <= full.seed <= SEED_MAX:
        raise _error(f"contract {name}: seed {full.seed} is outside the panel's 0..{SEED_MAX}")
    else:
        values.update(seed=full.seed, seed_lock=True)
    try:
        names.fallback_value(full.fallback)
        names.generate_mode_value(full.mode)
        names.camera_value(full.camera)
        codec = names.CODEC_CHOICES.get(full.codec.lower(), full.codec.upper())
    except ValueError as err:
        raise _error(f"contract {name}: {err}") from None
    offered = [identifier for identifier, _label, _ in props.CODECS]
    if codec not in offered:
        users = {api: user for user, api in names.CODEC_CHOICES.items()}
        raise _error(f"contract {name}: codec {full.codec!r} is not one the panel offers "
                     f"({', '.join(users.get(c, c) for c in offered)})")
    if not 0.0 <= float(full.camera_amount) <= 1.0:
        raise _error(f"contract {name}: camera_amount {full.camera_amount} is outside 0..1 (0.15 = 15 % of the "
                     f"picture)")
    values.update(fallback=full.fallback.lower(), codec=codec, generate_mode=(full.mode or "auto").upper(),
                  generate_camera=(full.camera or "auto").upper().replace("-", "_"),
                  generate_camera_amount=float(full.camera_amount))
    roles = [identifier for identifier, _label, _ in props.REFERENCE_ROLES]
    for ref in full.references:
        if ref.role not in roles:
            raise _error(f"contract {name}: reference image role {ref.role!r} ({ref.path}) is not one the panel "
                         f"offers ({', '.join(roles)})")
    values["references"] = [(ref.path, ref.role) for ref in full.references]
    # named only when the contract names them (a saved contract leaves them out)
    if "burn_in" in contract:
        values["generate_burn_in"] = bool(contract["burn_in"])
    for key in ("backend", "model", "take_dir"):
        if key in contract:
            values[key] = contract[key]
    feather = contract.get("constraints", {}).get("mask_feather_px")
    if feather is not None:
        if feather > FEATHER_MAX:
            raise _error(f"contract {name}: mask_feather_px {feather} is over the panel's {FEATHER_MAX}")
        values["feather"] = feather
    return values


def _kept_part(contract: dict) -> dict:
    """The contract's fields the panel has no widget for, as a contract."""
    part = {key: value for key, value in contract.items() if key not in SHOWN and key != "constraints"}
    constraints = {key: value for key, value in contract.get("constraints", {}).items()
                   if key not in SHOWN_CONSTRAINTS}
    if constraints:
        part["constraints"] = constraints
    return part


def load(settings, path) -> str:
    """Set the panel from the contract file at `path`; what it says, for the report. A file that
    cannot be used raises ContractError (naming the value) before anything is set."""
    path = Path(path)
    contract = tb.contract.read_contract(path)   # (every value's type and range checked there)
    values = _panel_values(contract, path.name)
    extra = json.dumps(_kept_part(contract), sort_keys=True)
    references = values.pop("references")
    for key, value in values.items():
        setattr(settings, key, value)
    settings.references.clear()
    for image, role in references:
        item = settings.references.add()
        item.filepath, item.role = image, role
    settings.contract_extra = extra
    settings.contract_path = str(path)
    return "; ".join([f"loaded {path.name}", *describe(settings)])


def save(path, options, settings=None) -> Path:
    """Write the contract of `options` (the panel's: jobs.panel_options) as JSON; a path without
    a suffix gets .json. The codec is written by the name people type ("lossless")."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".json")
    users = {api: user for user, api in names.CODEC_CHOICES.items()}
    saved = tb.contract.save_contract(path, dataclasses.replace(options, codec=users.get(options.codec,
                                                                                             options.codec)))
    if settings is not None:
        settings.contract_path = str(saved)
    return saved


def kept(settings) -> dict:
    """The kept contract fields (a contract dict; {} when none were loaded)."""
    text = settings.contract_extra.strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise _error("the scene's contract fields (TakeBridge panel) cannot be read; load the contract again")
    return data


def describe(settings) -> list[str]:
    """The kept fields in a few words each, for the panel and the Load report."""
    try:
        data = kept(settings)
    except tb.errors.TakeBridgeError as err:
        return [str(err)]
    constraints, lines = data.get("constraints", {}), []
    for key, label in (("role", "role"), ("purpose", "purpose")):
        if data.get(key):
            lines.append(f"{label}: {data[key]}")
    if data.get("characters"):
        lines.append(f"characters: {', '.join(data['characters'])}")
    if constraints.get("must_not_change"):
        lines.append(f"must not change: {'; '.join(constraints['must_not_change'])}")
    frames = [f"{label} {constraints[key]}" for key, label in (
        ("duration", "duration"), ("keep_head_frames", "keep head"), ("keep_tail_frames", "keep tail"),
        ("max_frames", "max frames")) if constraints.get(key)]
    if constraints.get("width") and constraints.get("height"):
        frames.append(f"size {constraints['width']}x{constraints['height']}")
    if frames:
        lines.append(", ".join(frames))
    if data.get("image"):
        lines.append(f"board image: {os.path.basename(data['image'])}")
    if data.get("review"):
        lines.append("review: " + ", ".join(f"{k} {v}" for k, v in sorted(data["review"].items())))
    budget = data.get("budget", {})
    if budget:
        lines.append("budget: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(budget.items())))
    return lines


def size(settings) -> tuple[int, int] | None:
    """The shot's size the kept contract gives (Generate's new shots), if it gives one."""
    constraints = kept(settings).get("constraints", {})
    width, height = int(constraints.get("width") or 0), int(constraints.get("height") or 0)
    return (width, height) if width > 0 and height > 0 else None


def library_for(options):
    """The character library for options that cite characters: characters.toml (or .json)
    beside the .blend, read now (its images' hashes are the ones sent); None when none are cited."""
    if not options.characters:
        return None
    cited = ", ".join(options.characters)
    if not bpy.data.filepath:
        raise _error(f"the shot cites character(s) {cited}: save the .blend beside its character library "
                     f"(characters.toml) first")
    folder = os.path.dirname(bpy.path.abspath(bpy.data.filepath))
    found = tb.contract.find_library(Path(folder))
    if found is None:
        raise _error(f"the shot cites character(s) {cited} but there is no character library (characters.toml or "
                     f"characters.json) beside {os.path.basename(bpy.data.filepath)} in {folder}")
    return tb.contract.read_library(found)
