"""The UIManager dialog (Resolve Studio; the free edition lost UIManager for scripts in 19.1):
operation, prompt, Draft (the model's few-step tier), frames, seed, progress and cancel, and the
selected item's take list (with each take's tier) with switch, approve / reject with a note,
finalize, and Final from draft (the chosen draft's request and seed at full steps, another take).
Generate (a pre-vis shot) acts on the gap at the playhead on the chosen video track (the In/Out
range when it holds the playhead), with its mode, camera move and PRE-VIS burn-in. A shot
contract file (bridge/contract.py) loads into the dialog's fields (prompt, seed, codec, mode,
camera, burn-in) and its other fields (role, purpose, characters, constraints, review, budget) go
with the jobs, the characters from the characters.toml beside the contract; Save writes the
contract of the dialog's values. Long work runs in a thread so the dialog's event loop keeps
answering; where UIManager is missing it says to use the marker mode instead."""
from __future__ import annotations

import importlib
import os
import threading

from . import core
from .bridge_import import tb

names = importlib.import_module(f"{tb.name}.api.names")   # the operation's choices, as the server names them

OPS = ["refine", "extend", "inpaint", "generate"]
MODES = ["auto", *names.GENERATE_MODES]          # generate: "auto" = from what is given
CAMERAS = ["auto", *names.CAMERA_MOVES]          # generate: "auto" = the server's (push in on a board)
CODECS = list(names.CODEC_CHOICES)               # the names people type: prores, lossless, ...
SEED_MAX = 2 ** 31 - 1                           # the Seed box's
COMBOS = {"Op": OPS, "Codec": CODECS, "Mode": MODES, "Camera": CAMERAS}   # each box's choices, in order


def ui_manager(resolve):
    fusion = resolve.Fusion() if core.has(resolve, "Fusion") else None
    manager = getattr(fusion, "UIManager", None) if fusion is not None else None
    return fusion, manager


def show(resolve, bmd, *, server: str = "127.0.0.1:50151") -> str:
    """Open the dialog (blocks until it is closed). Returns why it did not open, if it didn't."""
    fusion, ui = ui_manager(resolve)
    if ui is None or bmd is None:
        return ("this Resolve has no UIManager for scripts (the free edition since 19.1): put markers such as "
                "'tb extend 24' on clips and run 'TakeBridge Markers'")
    dispatcher = bmd.UIDispatcher(ui)
    window = dispatcher.AddWindow(
        {"ID": "TakeBridge", "WindowTitle": "TakeBridge", "Geometry": [200, 200, 460, 460]},
        [ui.VGroup({"Spacing": 6}, [
            ui.HGroup([ui.Label({"Text": "Contract"}),
                       ui.LineEdit({"ID": "Contract", "PlaceholderText": "shot contract file (.toml or .json)"}),
                       ui.Button({"ID": "LoadContract", "Text": "Load"}),
                       ui.Button({"ID": "SaveContract", "Text": "Save"})]),
            ui.HGroup([ui.Label({"Text": "Operation"}), ui.ComboBox({"ID": "Op"})]),
            ui.HGroup([ui.LineEdit({"ID": "Prompt", "PlaceholderText": "prompt (generative backends)"}),
                       ui.CheckBox({"ID": "Draft", "Text": "Draft", "Checked": False,
                                    "ToolTip": "the model's draft tier: few steps, for quick iteration; "
                                               "'Final from draft' makes its final"})]),
            ui.HGroup([ui.Label({"Text": "Frames"}), ui.SpinBox({"ID": "Frames", "Value": 24, "Minimum": 1,
                                                                   "Maximum": 500}),
                       ui.Label({"Text": "Seed"}), ui.SpinBox({"ID": "Seed", "Value": 1, "Minimum": 0,
                                                                "Maximum": SEED_MAX}),
                       ui.Label({"Text": "Codec"}), ui.ComboBox({"ID": "Codec"})]),
            ui.LineEdit({"ID": "Mask", "PlaceholderText": "inpaint: mask file (white = regenerate)"}),
            ui.HGroup([ui.Label({"Text": "Generate: track V"}), ui.SpinBox({"ID": "Track", "Value": 1, "Minimum": 1,
                                                                           "Maximum": 99}),
                       ui.Label({"Text": "mode"}), ui.ComboBox({"ID": "Mode"}),
                       ui.Label({"Text": "camera"}), ui.ComboBox({"ID": "Camera"}),
                       ui.CheckBox({"ID": "BurnIn", "Text": "PRE-VIS burn-in", "Checked": False})]),
            ui.HGroup([ui.Button({"ID": "Go", "Text": "Generate"}), ui.Button({"ID": "Cancel", "Text": "Cancel"})]),
            ui.Label({"ID": "Status", "Text": "select a clip on the Edit page"}),
            ui.Tree({"ID": "Takes", "HeaderHidden": False, "ColumnCount": 5}),
            ui.LineEdit({"ID": "Note", "PlaceholderText": "review note"}),
            ui.HGroup([ui.Button({"ID": "Switch", "Text": "Switch"}), ui.Button({"ID": "Approve", "Text": "Approve"}),
                       ui.Button({"ID": "Reject", "Text": "Reject"}), ui.Button({"ID": "Finalize", "Text": "Finalize"}),
                       ui.Button({"ID": "FinalFromDraft", "Text": "Final from draft"})]),
        ])])
    items = window.GetItems()
    for box, choices in COMBOS.items():
        for choice in choices:
            items[box].AddItem(choice)
    controller = Controller(resolve, server, items)
    window.On.LoadContract.Clicked = lambda ev: controller.load_contract()
    window.On.SaveContract.Clicked = lambda ev: controller.save_contract()
    window.On.Go.Clicked = lambda ev: controller.generate()
    window.On.Cancel.Clicked = lambda ev: controller.cancel()
    window.On.Switch.Clicked = lambda ev: controller.switch()
    window.On.Approve.Clicked = lambda ev: controller.review(True)
    window.On.Reject.Clicked = lambda ev: controller.review(False)
    window.On.Finalize.Clicked = lambda ev: controller.finalize()
    window.On.FinalFromDraft.Clicked = lambda ev: controller.final_from_draft()
    window.On.TakeBridge.Close = lambda ev: dispatcher.ExitLoop()
    controller.refresh()
    window.Show()
    dispatcher.RunLoop()
    window.Hide()
    return ""


class Controller:
    """What the dialog's buttons do, testable without a window (`items` maps widget ids to
    objects with .Text / .CurrentText / .Value)."""

    def __init__(self, resolve, server: str, items):
        self.resolve, self.server, self.items = resolve, server, items
        self.thread = None
        self.job_ids: list[str] = []   # the jobs this dialog sent: the only ones its Cancel touches
        self.contract: dict = {}       # the loaded shot contract: what the dialog has no field for goes with the jobs
        self.contract_file = ""        # where it was loaded from (its folder's characters.toml: the characters)

    def _item(self):
        return core.selected_items(core.context(self.resolve).timeline)[0]

    def status(self, text: str) -> None:
        self.items["Status"].Text = text

    def _value(self, widget: str, attribute: str, default):
        """A widget's value; `default` where this dialog has no such widget."""
        try:
            return getattr(self.items[widget], attribute)
        except (KeyError, AttributeError):
            return default

    def _set(self, widget: str, attribute: str, value) -> None:
        """Set a widget's value, where this dialog has the widget."""
        try:
            setattr(self.items[widget], attribute, value)
        except KeyError:
            pass

    def options(self, op: str = "") -> core.Options:
        """The job options: the loaded contract's, with the dialog's fields over them (Load put the
        contract's values in those fields; what the dialog has no field for stays the contract's)."""
        options = core.Options(op=op or self.items["Op"].CurrentText or "refine", contract_file=self.contract_file)
        if self.contract:
            options = tb.contract.apply_contract(options, self.contract)
        options.prompt, options.seed = self.items["Prompt"].Text, int(self.items["Seed"].Value)
        options.codec = self._value("Codec", "CurrentText", "") or options.codec
        mode = self._value("Mode", "CurrentText", "") or options.mode or "auto"
        camera = self._value("Camera", "CurrentText", "") or options.camera or "auto"
        options.mode = "" if mode == "auto" else mode
        options.camera = "" if camera == "auto" else camera
        options.burn_in = bool(self._value("BurnIn", "Checked", options.burn_in))
        options.tier = "draft" if self._value("Draft", "Checked", False) else ""
        return options

    def _path(self, path, doing: str) -> str:
        path = (path if path is not None else self._value("Contract", "Text", "") or "").strip()
        if not path:
            raise tb.contract.ContractError(f"give the shot contract's file to {doing} (Contract)")
        return os.path.abspath(os.path.expanduser(path))

    def load_contract(self, path: str | None = None) -> bool:
        """Load a shot contract (the Contract field's file, or `path`) into the dialog. A file that
        cannot be used is named in the status line and changes nothing."""
        try:
            path = self._path(path, "load")
            contract = core.read_contract(path)
            full = tb.contract.apply_contract(core.Options(), contract)
            name = os.path.basename(path)
            try:
                users = {api: user for user, api in names.CODEC_CHOICES.items()}
                codec = users.get(names.CODEC_CHOICES.get(full.codec.lower(), full.codec.upper()))
                if codec is None:
                    raise ValueError(f"codec {full.codec!r} is not one of {', '.join(CODECS)}")
                names.fallback_value(full.fallback)
                mode = full.mode.lower() or "auto"
                camera = full.camera.lower().replace("-", "_") or "auto"
                names.generate_mode_value(mode)
                names.camera_value(camera)
            except ValueError as err:
                raise tb.contract.ContractError(f"contract {name}: {err}") from None
            if full.seed is not None and not 0 <= full.seed <= SEED_MAX:
                raise tb.contract.ContractError(f"contract {name}: seed {full.seed} is outside the dialog's "
                                                f"0..{SEED_MAX}")
            if not 0.0 <= float(full.camera_amount) <= 1.0:
                raise tb.contract.ContractError(f"contract {name}: camera_amount {full.camera_amount} is outside 0..1 "
                                                f"(0.15 = 15 % of the picture)")
        except tb.errors.TakeBridgeError as err:
            self.status(f"error: {err}")
            return False
        self.items["Prompt"].Text = full.prompt
        if full.seed is not None:
            self.items["Seed"].Value = int(full.seed)
        for widget, value in (("Codec", codec), ("Mode", mode), ("Camera", camera)):
            self._set(widget, "CurrentIndex", COMBOS[widget].index(value))
        if "burn_in" in contract:        # (a saved contract leaves it out: the box stays as it is)
            self._set("BurnIn", "Checked", bool(contract["burn_in"]))
        self._set("Contract", "Text", path)
        self.contract, self.contract_file = contract, path
        said = [f"role {full.role}" if full.role else "", f"characters {', '.join(full.characters)}"
                if full.characters else "", f"{full.duration} frames" if full.duration else ""]
        self.status(f"loaded {name}" + "".join(f"; {part}" for part in said if part))
        return True

    def save_contract(self, path: str | None = None) -> bool:
        """Write the shot contract of the dialog's values (with the loaded contract's other fields)
        to the Contract field's file, or `path` (JSON; no suffix: .json)."""
        try:
            path = self._path(path, "save to")
            if not os.path.splitext(path)[1]:
                path += ".json"
            saved = tb.contract.save_contract(path, self.options())
        except (tb.errors.TakeBridgeError, OSError) as err:
            self.status(f"error: {err}")
            return False
        self._set("Contract", "Text", str(saved))
        self.contract_file = self.contract_file or str(saved)
        self.status(f"saved the shot contract {saved}")
        return True

    def generate(self, wait: bool = False) -> None:
        options = self.options()
        if options.op == "generate":     # a pre-vis shot in the gap at the playhead
            track = int(self._value("Track", "Value", 1) or 1)

            def start(progress):
                return core.generate(self.resolve, options, server=self.server, track=track, progress=progress,
                                     on_submit=self.job_ids.append)
        else:
            options.frames, options.mask = int(self.items["Frames"].Value), self.items["Mask"].Text

            def start(progress):
                return core.run(self.resolve, options, server=self.server, progress=progress,
                                on_submit=self.job_ids.append)

        def work():
            try:
                results = start(lambda name, f, text: self.status(f"{name}: {f * 100:.0f}% {text}"))
                self.status("; ".join(f"{r['item']}: {r.get('take_id') or r['state']} "
                                      f"{r.get('status', '') or r.get('error', '')}".strip() for r in results))
            except Exception as err:  # shown in the dialog, never raised into Resolve's loop
                self.status(f"error: {err}")
            self.refresh()

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()
        if wait:
            self.thread.join()

    def cancel(self) -> None:
        """Cancel the jobs this dialog sent that are still queued or running; nobody else's."""
        pb, cancelled = tb.api.pb, 0
        with tb.client.GenerationClient(self.server) as client:
            for job_id in list(self.job_ids):
                if client.get_job(job_id).state in (pb.QUEUED, pb.RUNNING):
                    client.cancel(job_id)
                    cancelled += 1
        self.status(f"cancel requested for {cancelled} job(s) of this dialog" if cancelled else "nothing of ours to cancel")

    def refresh(self) -> list[dict]:
        try:
            rows = core.takes_of(self._item())
        except core.ResolveError as err:
            self.status(str(err))
            return []
        tree = self.items["Takes"]
        if core.has(tree, "Clear"):
            tree.Clear()
        for row in rows:
            if core.has(tree, "NewItem"):
                entry = tree.NewItem()
                entry.Text[0] = str(row["index"])
                entry.Text[1] = row.get("take_id", row["name"])
                entry.Text[2] = row.get("status", "")
                entry.Text[3] = "*" if row["selected"] else ""
                entry.Text[4] = tier_text(row)
                tree.AddTopLevelItem(entry)
        self.rows = rows
        return rows

    def _chosen(self) -> int:
        tree = self.items["Takes"]
        current = tree.CurrentItem() if core.has(tree, "CurrentItem") else None
        return int(current.Text[0]) if current is not None else len(getattr(self, "rows", [])) or 1

    def switch(self, index: int | None = None) -> None:
        core.switch_take(self._item(), index or self._chosen())
        self.refresh()

    def review(self, approve: bool, index: int | None = None) -> None:
        meta = core.review(self._item(), index or self._chosen(), approve, self.items["Note"].Text, server=self.server)
        self.status(f"{meta['take_id']}: {meta['status']}")
        self.refresh()

    def finalize(self) -> None:
        core.finalize(self._item())
        self.refresh()

    def final_from_draft(self, index: int | None = None, wait: bool = False) -> None:
        """The final of the chosen draft take (the list's current row, else `index`): its request
        and seed at full steps, added to the item's Take Selector and selected. Runs in a thread."""
        index = index or self._chosen()

        def work():
            try:
                result = core.final_from_draft(
                    self.resolve, self._item(), index, server=self.server, on_submit=self.job_ids.append,
                    progress=lambda name, f, text: self.status(f"{name}: final {f * 100:.0f}% {text}"))
                if result["state"] == "succeeded":
                    self.status(f"{result['item']}: {result['take_id']} {result.get('status', '')}, the final of "
                                f"{result['promoted_from']}")
                else:
                    self.status(f"{result['item']}: the final of {result['promoted_from']} {result['state']}: "
                                f"{result.get('error', '')}")
            except Exception as err:  # shown in the dialog, never raised into Resolve's loop
                self.status(f"error: {err}")
            self.refresh()

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()
        if wait:
            self.thread.join()


def tier_text(row: dict) -> str:
    """The take list's tier column: "draft", "final of <draft id>", nothing for other takes."""
    if row.get("tier") == "draft":
        return "draft"
    return f"final of {row['promoted_from']}" if row.get("promoted_from") else ""
