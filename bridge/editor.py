"""The editor protocol, and the one submit -> follow -> apply loop every editor runs.

An editor (the OTIO file on the command line, DaVinci Resolve, Blender) is an adapter that
talks to its own API and nothing else: it lists the clips the user chose (each identified by
its track and position, never by name alone), turns one into a request (reading its timeline
as OpenTimelineIO and refusing, before anything is sent, what cannot work: no room for an
extension, no mask...), applies a finished take, and shows progress. The loop is here, once:

    results = run(editor, options, client)

One result per clip, in order: `state` is "refused" (nothing was sent; `error` says why),
"queued" (not waited for), or the job's end ("succeeded", "failed", "cancelled"), with
"not_placed" when a take was made but the editor could not place it. One clip's refusal or
failure never drops the others.
"""
from __future__ import annotations

from typing import Any, Callable, Optional, Protocol, Sequence

from .client import ClientError
from .errors import TakeBridgeError
from .progress import JobView, apply_event, apply_job, outcome


class Editor(Protocol):
    """What an editor adapter implements (see the module text)."""

    def clips(self) -> Sequence[Any]:
        """The clips to work on, in timeline order."""

    def describe(self, clip: Any) -> dict:
        """How results name the clip in this editor: at least "item" (its name), "track" and
        "record_start" (its first frame as the editor's timecode)."""

    def request(self, clip: Any, options: Any) -> Any:
        """The SubmitJobRequest for the clip (bridge.request.build_request); raise a
        TakeBridgeError to refuse the clip before anything is sent."""

    def apply(self, clip: Any, take: Any, options: Any) -> dict:
        """Place a finished take; what was done, as a dict merged into the clip's result.
        Raise a TakeBridgeError when it cannot be placed (the take stays on the server)."""

    def progress(self, clip: Any, view: JobView) -> None:
        """Show a job's progress (called on each event)."""


def run(editor: Editor, options: Any, client: Any, *, wait: bool = True,
        on_submit: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Submit a job for each of the editor's clips, then (with `wait`) follow each to its end
    and apply its take. `on_submit(job_id)` is told each job as it is sent, so a caller can
    cancel its own jobs and no one else's."""
    results, sent = [], []
    for clip in editor.clips():
        result = dict(editor.describe(clip))
        try:
            job = client.submit(editor.request(clip, options))
        except (TakeBridgeError, ClientError) as err:
            results.append({**result, "state": "refused", "error": str(err), "code": _code(err)})
            continue
        if on_submit is not None:
            on_submit(job.job_id)
        result.update(job_id=job.job_id, state="queued")
        results.append(result)
        sent.append((clip, result))
    if not wait:
        return results
    for clip, result in sent:
        view = follow(client, result["job_id"], lambda v, c=clip: editor.progress(c, v))
        # the job's outcome ("status" is the job's state there: kept as "state", so an editor's own
        # "status", the take's review status, is not shadowed)
        result.update({k: v for k, v in outcome(view).items() if k not in ("job_id", "status")}, state=view.state)
        if view.state == "succeeded" and view.take is not None:
            try:
                result.update(editor.apply(clip, view.take, options))
            except TakeBridgeError as err:
                result.update(state="not_placed", error=f"the take {view.take.take_id} was made "
                                                        f"({view.take.media.url}) but cannot be placed: {err}",
                              code=err.code)
    return results


def follow(client: Any, job_id: str, on_view: Callable[[JobView], None] = lambda view: None) -> JobView:
    """Wait for a job, folding its events into a JobView (on_view sees each step); a server that
    goes away ends the view as "lost" with the reason, rather than raising."""
    view = JobView(job_id)

    def on_event(event):
        nonlocal view
        view = apply_event(view, event)
        on_view(view)
    try:
        return apply_job(view, client.wait(job_id, on_event=on_event))
    except ClientError as err:
        return JobView(job_id, state="lost", error=f"lost touch with the server: {err}")


def summary(results: list[dict]) -> str:
    """One line: how many clips got a take, and why the others did not."""
    done = sum(r["state"] == "succeeded" for r in results)
    others = [f"{r.get('item', '?')}: {r['state']} ({r.get('error') or 'no take'})"
              for r in results if r["state"] != "succeeded"]
    return f"{done} of {len(results)} clips got a take" + ("; " + "; ".join(others) if others else "")


def _code(err: Exception) -> str:
    if isinstance(err, TakeBridgeError):
        return err.code
    status = getattr(err, "code", None)
    return "server_unreachable" if status is not None and status.name == "UNAVAILABLE" else "refused_by_server"
