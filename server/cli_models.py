"""`takebridge models list | verify | make-tiny`: what the diffusers backend can load."""
from __future__ import annotations

import json
import os
from pathlib import Path

from bridge.console.base import EXIT_JOB_FAILED, EXIT_OK, CliError
from server.backends.diffusers import catalog
from server.backends.diffusers.loading import ModelError, read_profiles, verify

DEFAULT_PROFILE = os.environ.get("TAKEBRIDGE_MODELS", "models.json")


def add_parser(sub) -> None:
    models = sub.add_parser(
        "models", help="list, verify or make the diffusers backend's models",
        description="The diffusers backend loads models described in a profile file (JSON; see docs/models.md) "
                    "from local folders only, safetensors only, never model code.")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for name, text in (("list", "the models TakeBridge knows (its catalog) or a profile's: operations, native size "
                                "and fps, memory, licence, installed?"),
                       ("verify", "safety checks and weight hashes of every model in a profile (exit 1 on a problem)")):
        action = msub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument("--profile", type=Path, default=None if name == "list" else Path(DEFAULT_PROFILE),
                            help="model profile (default: " + ("the catalog; " if name == "list" else "")
                                 + f"{DEFAULT_PROFILE} or $TAKEBRIDGE_MODELS)")
        action.add_argument("--json", action="store_true")
    pull = msub.add_parser("pull", help="download a catalog model's weights into the Hugging Face cache",
                           description="Download a catalog model (safetensors and configs only, its revision) into "
                                       "the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or "
                                       "~/.cache/huggingface/hub), with a progress bar; an interrupted pull resumes; "
                                       "every file is checked against its hash. Then: takebridge serve --model ID.")
    pull.add_argument("id", help="catalog model id (takebridge models list)")
    pull.add_argument("--dry-run", action="store_true", help="only say what would be fetched, and where")
    pull.add_argument("--json", action="store_true")
    tiny = msub.add_parser("make-tiny", help="build tiny random pipelines offline (tests, demos)",
                           description="Build tiny, randomly initialised WanVACE, Wan video-to-video and LTX-Video "
                                       "condition pipelines offline, save them as safetensors under DIR and write "
                                       "DIR/models.json. Their pixels mean nothing; they exercise the real loading "
                                       "and generation code in seconds on a CPU.")
    tiny.add_argument("folder", type=Path)
    tiny.add_argument("--json", action="store_true")


def run(args) -> int:
    if args.models_command == "make-tiny":
        from server.backends.diffusers.tiny import make_tiny

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        profile = make_tiny(args.folder)
        data = {"profile": str(profile), "models": [m["id"] for m in json.loads(profile.read_text())["models"]]}
        print(json.dumps(data) if args.json else
              f"tiny models in {args.folder}: {', '.join(data['models'])}\nprofile: {profile}\n"
              f"serve them with: takebridge serve --models {profile}")
        return EXIT_OK
    if args.models_command == "pull":
        return _pull(args)
    if args.models_command == "list" and args.profile is None:
        return _list_catalog(args)
    try:
        profiles = read_profiles(args.profile)
    except ModelError as err:
        raise CliError(str(err))
    if args.models_command == "list":
        rows = [{"id": p.id, "pipeline": p.pipeline, "operations": list(p.operations),
                 "native_size": list(p.native_size), "native_fps": p.native_fps, "frame_rule": p.frame_rule,
                 "dtype": p.dtype, "memory_gb": p.memory_gb, "folder": str(p.folder), "installed": p.folder.is_dir(),
                 "speed": p.speed} for p in profiles]
        if args.json:
            print(json.dumps({"profile": str(args.profile), "models": rows}, indent=2))
        else:
            print(f"{'model':<24} {'pipeline':<14} {'operations':<22} {'native':<14} {'memory':>7}  installed")
            for r in rows:
                native = f"{r['native_size'][0]}x{r['native_size'][1]}@{r['native_fps']:g}"
                print(f"{r['id']:<24} {r['pipeline']:<14} {','.join(r['operations']):<22} {native:<14} "
                      f"{r['memory_gb']:>5.1f}GB  {'yes' if r['installed'] else 'NO: ' + r['folder']}")
        return EXIT_OK
    results = [verify(p) for p in profiles]
    if args.json:
        print(json.dumps({"profile": str(args.profile), "models": results}, indent=2))
    else:
        for r in results:
            print(f"{'ok  ' if r['ok'] else 'FAIL'} {r['id']:<24} " + (r["problem"] or f"sha256 {r['weights_sha256'][:16]}…"))
    return EXIT_OK if all(r["ok"] for r in results) else EXIT_JOB_FAILED


def _list_catalog(args) -> int:
    try:
        entries = catalog.catalog()
    except ModelError as err:
        raise CliError(str(err))
    rows = []
    for item in entries.values():
        snapshot = catalog.installed_snapshot(item)
        rows.append({"id": item.id, "pipeline": item.pipeline, "operations": list(item.operations),
                     "native_size": list(item.native_size), "native_fps": item.native_fps, "memory_gb": item.memory_gb,
                     "repo": item.repo, "revision": item.revision, "licence": item.licence,
                     "installed": snapshot is not None, "snapshot": str(snapshot) if snapshot else None,
                     "note": item.note})
    if args.json:
        print(json.dumps({"cache": str(catalog.hub_cache()), "models": rows}, indent=2))
        return EXIT_OK
    print(f"{'model':<24} {'operations':<26} {'native':<14} {'memory':>7}  installed")
    for r in rows:
        native = f"{r['native_size'][0]}x{r['native_size'][1]}@{r['native_fps']:g}"
        state = "yes" if r["installed"] else f"no: takebridge models pull {r['id']}"
        print(f"{r['id']:<24} {','.join(r['operations']):<26} {native:<14} {r['memory_gb']:>5.0f}GB  {state}")
    print(f"\ncache: {catalog.hub_cache()}; serve one with: takebridge serve --backend diffusers --model ID")
    return EXIT_OK


def _pull(args) -> int:
    try:
        plan = catalog.pull_plan(args.id)
        if args.dry_run:
            print(json.dumps(plan, indent=2) if args.json else
                  f"would fetch {plan['repo']} ({plan['revision']}): {', '.join(plan['allow_patterns'])}\n"
                  f"into {plan['destination']}; installed now: {'yes' if plan['installed'] else 'no'}\n"
                  f"licence: {plan['licence']}")
            return EXIT_OK
        snapshot = catalog.pull(args.id)
    except ModelError as err:
        raise CliError(str(err))
    data = {**plan, "installed": True, "snapshot": str(snapshot)}
    print(json.dumps(data, indent=2) if args.json else
          f"{args.id}: {snapshot} (hashes checked)\nserve it with: takebridge serve --backend diffusers --model {args.id}")
    return EXIT_OK
