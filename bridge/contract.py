"""Shot contracts as files, characters as a project library.

A **contract** (`--contract FILE`, JSON or TOML; the Blender panel and the Resolve dialog load and
save them) holds the fields the API's ShotContract carries, by the names people write:

```toml
role = "pre-vis"
purpose = "establish the harbour before the chase"
prompt = "a wide of the harbour at dawn, fishing boats, mist"
negative_prompt = "text, watermark"
characters = ["hero"]                 # from the project's character library
seed = 1234
fallback = "classic"                  # fail | degrade | classic
codec = "prores"
[constraints]
duration = 72                         # frames (Generate: the shot's length when no range is given)
camera = "push_in"                    # Generate's camera move over a board
camera_amount = 0.1
must_not_change = ["the boats' positions"]
keep_head_frames = 0
[review]                              # gate thresholds by gate name (server/gates.py)
flicker = 1.5
[budget]
max_frames = 240
max_compute_seconds = 600
```

The **character library** (`characters.toml` or `.json`, beside the timeline or named with
`--characters FILE`) maps a name to reference images and a description:

```toml
[hero]
description = "a woman in her thirties, red raincoat, short black hair"
images = ["refs/hero_front.png", "refs/hero_side.png"]
```

A shot that cites a character gets its images as reference images (role "character") and its
description appended to the prompt in one fixed form ("hero: a woman in her thirties, ..."), so
the same character is asked for the same way in every shot; the request carries a hash of name,
description and images that the server checks and the manifest records.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from pathlib import Path

from . import files
from .errors import TakeBridgeError

TOP = {"role", "purpose", "prompt", "negative_prompt", "characters", "seed", "fallback", "codec", "take_dir",
       "backend", "model", "mode", "image", "references", "constraints", "review", "budget", "burn_in",
       "schema"}
CONSTRAINTS = {"duration", "camera", "camera_amount", "must_not_change", "keep_head_frames", "keep_tail_frames",
               "max_frames", "mask_feather_px", "width", "height"}
BUDGET = {"max_frames", "max_compute_seconds"}
CONTRACT_SCHEMA = 1


class ContractError(TakeBridgeError):
    """A contract or character library that cannot be used; the message names the value."""

    code = "bad_contract"


@dataclasses.dataclass
class Reference:
    """A reference image for the model: a storyboard frame, a style or a character sheet."""

    path: str
    role: str = "reference"


@dataclasses.dataclass
class Character:
    name: str
    description: str
    images: list[str]            # absolute paths

    def sha256(self) -> str:
        return character_hash(self.name, self.description, [_file_hash(p) for p in self.images])


def character_hash(name: str, description: str, image_hashes: list[str]) -> str:
    """What identifies a character: its name, description and its images' contents."""
    text = json.dumps({"name": name, "description": description, "images": sorted(image_hashes)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def read_contract(path) -> dict:
    """A contract file as a checked dict (unknown keys and wrong types refused, naming them);
    relative image paths are made absolute against the file's folder."""
    path = Path(path)
    data = _read_table(path, "contract")
    _keys(data, TOP, f"contract {path.name}")
    for section, allowed in (("constraints", CONSTRAINTS), ("budget", BUDGET)):
        if section in data:
            if not isinstance(data[section], dict):
                raise ContractError(f"contract {path.name}: [{section}] must be a table")
            _keys(data[section], allowed, f"contract {path.name} [{section}]")
    if "review" in data and (not isinstance(data["review"], dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in data["review"].values())):
        raise ContractError(f"contract {path.name}: [review] maps gate names to numbers (e.g. flicker = 1.5)")
    for key in ("characters", "references"):
        if key in data and (not isinstance(data[key], list) or not all(isinstance(v, str) for v in data[key])):
            raise ContractError(f"contract {path.name}: {key} must be a list of text, not {data[key]!r}")
    _check_types(data, path.name)
    if data.get("schema", CONTRACT_SCHEMA) > CONTRACT_SCHEMA:
        raise ContractError(f"contract {path.name} has schema {data['schema']}, newer than this TakeBridge reads; "
                            f"update TakeBridge")
    for key in ("image",):
        if data.get(key):
            data[key] = str((path.parent / data[key]).resolve())
    if data.get("references"):
        data["references"] = [_absolute_ref(entry, path.parent) for entry in data["references"]]
    if data.get("take_dir"):
        data["take_dir"] = str((path.parent / data["take_dir"]).resolve())
    return data


TEXT_FIELDS = ("role", "purpose", "prompt", "negative_prompt", "fallback", "codec", "take_dir", "backend", "model",
               "mode", "image")
WHOLE = {"seed": (0, 2**53 - 1), "schema": (1, 10**6)}
WHOLE_CONSTRAINTS = {"duration": (0, 10**7), "keep_head_frames": (0, 10**7), "keep_tail_frames": (0, 10**7),
                     "max_frames": (0, 10**7), "mask_feather_px": (0, 64), "width": (0, 8192), "height": (0, 8192)}


def _check_types(data: dict, name: str) -> None:
    """Each known field of the type and range it must have (the message names the value)."""
    def whole(value, low, high, where):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ContractError(f"contract {name}: {where} is {value!r}; it must be a whole number in {low}..{high}")
    for key in TEXT_FIELDS:
        if key in data and not isinstance(data[key], str):
            raise ContractError(f"contract {name}: {key} must be text, not {data[key]!r}")
    for key, (low, high) in WHOLE.items():
        if key in data:
            whole(data[key], low, high, key)
    if "burn_in" in data and not isinstance(data["burn_in"], bool):
        raise ContractError(f"contract {name}: burn_in must be true or false, not {data['burn_in']!r}")
    constraints = data.get("constraints", {})
    for key, (low, high) in WHOLE_CONSTRAINTS.items():
        if key in constraints:
            whole(constraints[key], low, high, f"[constraints] {key}")
    if "camera" in constraints and not isinstance(constraints["camera"], str):
        raise ContractError(f"contract {name}: [constraints] camera must be text, not {constraints['camera']!r}")
    amount = constraints.get("camera_amount", 0.0)
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0.0 <= amount <= 1.0:
        raise ContractError(f"contract {name}: [constraints] camera_amount is {amount!r}; it must be 0..1 "
                            f"(0.15 = 15 % of the picture)")
    notes = constraints.get("must_not_change", [])
    if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
        raise ContractError(f"contract {name}: [constraints] must_not_change must be a list of text")
    if "max_frames" in data.get("budget", {}):
        whole(data["budget"]["max_frames"], 0, 10**7, "[budget] max_frames")
    for key, value in data.get("budget", {}).items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ContractError(f"contract {name}: [budget] {key} is {value!r}; it must be a number from 0")


def apply_contract(options, contract: dict):
    """The job options with the contract's fields (a copy; the contract wins where it speaks)."""
    constraints, budget = contract.get("constraints", {}), contract.get("budget", {})
    changes = {}
    for key in ("prompt", "negative_prompt", "seed", "fallback", "codec", "take_dir", "backend", "model", "mode",
                "image", "role", "purpose", "burn_in"):
        if key in contract:
            changes[key] = contract[key]
    for key in ("camera", "camera_amount", "width", "height"):
        if key in constraints:
            changes[key] = constraints[key]
    if "mask_feather_px" in constraints:
        changes["feather"] = constraints["mask_feather_px"]
    if "must_not_change" in constraints:
        changes["must_not_change"] = list(constraints["must_not_change"])
    for key in ("keep_head_frames", "keep_tail_frames", "duration"):
        if key in constraints:
            changes[key] = constraints[key]
    if "max_frames" in constraints or "max_frames" in budget:
        changes["max_frames"] = min(v for v in (constraints.get("max_frames"), budget.get("max_frames")) if v)
    if "max_compute_seconds" in budget:
        changes["max_compute_seconds"] = float(budget["max_compute_seconds"])
    if "review" in contract:
        changes["thresholds"] = {k: float(v) for k, v in contract["review"].items()}
    if "characters" in contract:
        changes["characters"] = list(contract["characters"])
    if "references" in contract:
        changes["references"] = [Reference(path, role or "reference") for role, path in
                                 (_split_ref(entry) for entry in contract["references"])]
    try:
        return dataclasses.replace(options, **changes)
    except TypeError as err:
        raise ContractError(f"contract: {err}") from None


def contract_of(options) -> dict:
    """The contract a set of job options makes (what an editor saves)."""
    data = {"schema": CONTRACT_SCHEMA}
    for key in ("role", "purpose", "prompt", "negative_prompt", "fallback", "codec", "mode", "backend", "model",
                "image"):
        if getattr(options, key, ""):
            data[key] = getattr(options, key)
    if options.burn_in:
        data["burn_in"] = True
    if options.seed is not None:
        data["seed"] = options.seed
    if options.characters:
        data["characters"] = list(options.characters)
    constraints = {k: getattr(options, k) for k in ("camera", "camera_amount", "width", "height", "duration",
                                                    "keep_head_frames", "keep_tail_frames") if getattr(options, k)}
    if options.feather:
        constraints["mask_feather_px"] = options.feather
    if options.must_not_change:
        constraints["must_not_change"] = list(options.must_not_change)
    if options.max_frames:
        constraints["max_frames"] = options.max_frames
    if constraints:
        data["constraints"] = constraints
    if options.thresholds:
        data["review"] = dict(options.thresholds)
    if options.max_compute_seconds:
        data["budget"] = {"max_compute_seconds": options.max_compute_seconds}
    if options.references:
        data["references"] = [f"{r.role}={r.path}" for r in options.references]
    return data


def save_contract(path, options) -> Path:
    """Write the options' contract as JSON, atomically (TOML is read, JSON written)."""
    path = Path(path)
    if path.suffix.lower() not in (".json", ""):
        raise ContractError(f"contracts are saved as JSON; name the file {path.stem}.json")
    text = json.dumps(contract_of(options), indent=2) + "\n"
    files.write_atomic(path, text)
    return path


def read_library(path) -> dict[str, Character]:
    """A character library file: name -> Character (images made absolute, each checked to exist)."""
    path = Path(path)
    data = _read_table(path, "character library")
    library = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise ContractError(f"character library {path.name}: {name!r} must be a table with description and "
                                f"images")
        _keys(entry, {"description", "images"}, f"character {name!r} in {path.name}")
        images = entry.get("images", [])
        if not isinstance(images, list) or not images or not all(isinstance(i, str) for i in images):
            raise ContractError(f"character {name!r} in {path.name}: images must be a list of one or more files")
        absolute = [str((path.parent / image).resolve()) for image in images]
        for image, full in zip(images, absolute):
            if not os.path.isfile(full):
                raise ContractError(f"character {name!r} in {path.name}: image {image} not found ({full})")
        library[name] = Character(name, str(entry.get("description", "")), absolute)
    return library


def find_library(near: Path) -> Path | None:
    """characters.toml or characters.json in `near` (a folder), if there is one."""
    for name in ("characters.toml", "characters.json"):
        if (Path(near) / name).is_file():
            return Path(near) / name
    return None


def resolve_characters(wanted: list[str], library: dict[str, Character] | None, where: str = "") -> list[Character]:
    """The cited characters from the library; a name it lacks is refused, naming the ones it has."""
    if not wanted:
        return []
    if library is None:
        raise ContractError(f"the shot cites characters {', '.join(wanted)} but there is no character library "
                            f"(characters.toml beside the timeline, or --characters FILE){where}")
    missing = [name for name in wanted if name not in library]
    if missing:
        raise ContractError(f"character {missing[0]!r} is not in the library ({', '.join(sorted(library)) or 'empty'})"
                            f"{where}; add it or fix the name")
    return [library[name] for name in wanted]


def prompt_with(prompt: str, characters: list[Character]) -> str:
    """The prompt with each cited character described the one same way."""
    described = [f"{c.name}: {c.description}." for c in characters if c.description]
    return " ".join([prompt.strip()] + described).strip() if described else prompt


def _read_table(path: Path, what: str) -> dict:
    if not path.is_file():
        raise ContractError(f"{what} {path} not found")
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        if path.suffix.lower() == ".toml":
            import tomllib
            data = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (ValueError, TypeError) as err:
        raise ContractError(f"{what} {path.name} cannot be read: {' '.join(str(err).split())[:200]}") from None
    if not isinstance(data, dict):
        raise ContractError(f"{what} {path.name} must hold a table (an object), not {type(data).__name__}")
    return data


def _keys(data: dict, allowed: set, where: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ContractError(f"{where}: unknown field {unknown[0]!r}; fields: {', '.join(sorted(allowed))}")


def _split_ref(entry: str) -> tuple[str, str]:
    role, sep, path = entry.rpartition("=")
    return (role if sep else "reference"), path


def _absolute_ref(entry: str, base: Path) -> str:
    role, path = _split_ref(entry)
    return f"{role}={(base / path).resolve()}"


def _file_hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


