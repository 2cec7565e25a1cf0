"""The `takebridge` command: serve, submit, takes, jobs, cancel and demo.

Every command explains itself with --help; `--json` prints one JSON object for scripts.
Exit codes: 0 done, 1 the job failed or was cancelled, 2 bad input or refused, 3 no server.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from bridge import console
from bridge.api.names import CODEC_CHOICES
from bridge.console import timeline as console_timeline
from bridge.console.base import (  # noqa: F401
    DEFAULT_ADDRESS,
    EXIT_BAD_INPUT,
    EXIT_JOB_FAILED,
    EXIT_NO_SERVER,
    EXIT_OK,
    CliError,
    emit,
    read_timeline,
    write_timeline,
)
from server import cli_models, cli_quality, cli_resolve
from server.app import ConfigError, ServerConfig, build_server, shutdown
from server.demo import run_demo
from server.media import probe


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="takebridge",
        description="TakeBridge: generate refined, extended and inpainted takes of timeline clips "
                    "on a local server and place them back on the OpenTimelineIO timeline as versioned takes.",
        epilog="Start a server with `takebridge serve`, then `takebridge submit ... --wait`. "
               "`takebridge demo` runs everything once on generated footage.")
    parser.add_argument("--log-level", default=os.environ.get("TAKEBRIDGE_LOG", "info"),
                        choices=["debug", "info", "warning", "error"], help="how much to log on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the generation server (loopback by default)",
                           description="Run the gRPC generation server. It prints the address it listens on, "
                                       "keeps its job database and takes in --store, and resumes unfinished jobs "
                                       "after a restart.")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to bind (default 127.0.0.1; anything but loopback needs --tls-cert, "
                            "--tls-key and --token)")
    serve.add_argument("--port", type=int, default=50151, help="port (default 50151; 0 picks a free one)")
    serve.add_argument("--store", type=Path, default=Path(os.environ.get("TAKEBRIDGE_STORE", "takebridge_store")),
                       help="folder for the job database, uploaded media and takes without a take folder "
                            "(default ./takebridge_store)")
    serve.add_argument("--backend", default="classic", help="default backend (classic: CPU, no model weights)")
    serve.add_argument("--allow", type=Path, action="append", default=[],
                       help="folder media may be read from and takes written to (repeatable; default: your "
                            "home, the temp folder, the working folder and the store)")
    serve.add_argument("--max-frames", type=int, default=1000, help="longest take accepted, in frames")
    serve.add_argument("--model", action="append", default=[], metavar="ID",
                       help="a model the diffusers backend serves, by its catalog name (takebridge models list; "
                            "repeat for several): its weights from the Hugging Face cache (takebridge models pull "
                            "ID) or --model-dir")
    serve.add_argument("--model-dir", type=Path, help="the folder holding the one --model's weights")
    serve.add_argument("--ray", nargs="?", const="local", metavar="local|auto|ADDRESS",
                       help="run the jobs on Ray workers (pip install takebridge[ray]): 'local' starts a cluster of "
                            "this machine, 'auto' joins the one running here, or a head's ADDRESS (host:port); the "
                            "editors talk to this server as before (docs/cluster.md)")
    serve.add_argument("--ray-workers", type=int, default=2, metavar="N",
                       help="Ray workers to send jobs to (default 2): an actor per CPU slot, or per GPU with "
                            "--device cuda; with a model whose profile asks for several devices per job "
                            "(parallel.devices), N device groups of that many")
    serve.add_argument("--ray-no-shared-storage", action="store_true",
                       help="the Ray workers do not see this machine's disk: each job's inputs go into this "
                            "server's content-addressed media store (a source movie cut to the GOPs of its range, "
                            "a sequence's frames, whole stills and masks); a worker fetches what its cache lacks "
                            "and sends the encoded take back")
    serve.add_argument("--ray-worker-memory", type=float, default=0.0, metavar="GB",
                       help="memory one Ray worker may use for a job: a generative job that needs more is refused "
                            "at submit, with the numbers (default: not limited)")
    serve.add_argument("--deterministic", action="store_true",
                       help="diffusers: deterministic algorithms, cuDNN deterministic, no TF32, a fixed cuBLAS "
                            "workspace, so a re-render on the same GPU class is bit-exact (slower; every manifest "
                            "records the settings)")
    serve.add_argument("--models", type=Path, default=os.environ.get("TAKEBRIDGE_MODELS") or None,
                       help="model profile (JSON) for the diffusers backend (or $TAKEBRIDGE_MODELS): your own "
                            "description of each model, overriding the catalog; without --model or --models only "
                            "the classic CPU backend runs")
    serve.add_argument("--device", default="auto", help="device for the diffusers backend: auto (a CUDA GPU if "
                                                        "there is one), cuda, cuda:1, cpu (slow)")
    serve.add_argument("--compute-budget", type=float, default=0.0, metavar="SECONDS",
                       help="compute seconds all jobs together may use (counted in the store across restarts); "
                            "when spent, new jobs are refused and a running one stops cleanly (default: no limit)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate, for a non-loopback --host")
    serve.add_argument("--tls-key", type=Path, help="PEM private key, for a non-loopback --host")
    serve.add_argument("--token", default=os.environ.get("TAKEBRIDGE_TOKEN", ""),
                       help="require this bearer token from clients (or TAKEBRIDGE_TOKEN)")
    serve.add_argument("--json", action="store_true", help="print the listening address as JSON")



    console.add_parsers(sub)
    cli_quality.add_parsers(sub)
    cli_models.add_parser(sub)
    cli_resolve.add_parser(sub)

    demo = sub.add_parser("demo", help="make sample footage and run refine, extend and inpaint end to end",
                          description="Generate a textured sample clip with camera motion and an object to "
                                      "remove, start a real server, run refine, extend and inpaint through "
                                      "gRPC, and write demo.otio, the takes and a contact sheet.")
    demo.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default ./demo_out)")
    demo.add_argument("--frames", type=int, default=72, help="length of the sample clip in frames")
    demo.add_argument("--width", type=int, default=1280)
    demo.add_argument("--height", type=int, default=720)
    demo.add_argument("--codec", choices=sorted(CODEC_CHOICES), default="prores",
                      help="takes' codec: prores (matched to the 10-bit ProRes plate), lossless (FFV1 in the plate's "
                           "own pixel format: every pixel outside the inpaint mask is the plate's, bit for bit), "
                           "dnxhr, png, exr or h264")
    demo.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except CliError as err:
        _print_error(args, str(err))
        return err.exit_code
    except KeyboardInterrupt:
        return 130


def _print_error(args, message: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps({"status": "error", "error": message}))
    print(f"takebridge: error: {message}", file=sys.stderr)


def cmd_serve(args) -> int:
    config = ServerConfig(host=args.host, port=args.port, store=args.store, backend=args.backend,
                          allow=tuple(args.allow), tls_cert=args.tls_cert, tls_key=args.tls_key, token=args.token,
                          max_frames=args.max_frames, compute_budget=args.compute_budget,
                          models=Path(args.models) if args.models else None, device=args.device,
                          model=tuple(args.model), model_dir=args.model_dir, deterministic=args.deterministic,
                          ray=args.ray, ray_workers=args.ray_workers, ray_worker_memory_gb=args.ray_worker_memory,
                          ray_shared_storage=not args.ray_no_shared_storage)
    try:
        server, runtime, port = build_server(config)
    except (ConfigError, OSError) as err:
        raise CliError(str(err))
    address = f"{args.host}:{port}"
    if args.json:
        print(json.dumps({"address": address, "store": str(runtime.store_dir), "backend": runtime.default_backend}),
              flush=True)
    else:
        print(f"TakeBridge server listening on {address} (backend {runtime.default_backend}, "
              f"store {runtime.store_dir})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    logging.getLogger("takebridge.server").info("shutting down")
    shutdown(server, runtime)
    return EXIT_OK


def cmd_demo(args) -> int:
    return run_demo(args)


console_timeline.MEDIA_PROBE = probe    # the client's timeline commands read media with the server's reader
COMMANDS = {"serve": cmd_serve, "demo": cmd_demo, **console.COMMANDS, **cli_quality.COMMANDS,
            "models": cli_models.run, "install-resolve": cli_resolve.run}

if __name__ == "__main__":
    sys.exit(main())
