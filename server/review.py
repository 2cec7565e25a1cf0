"""Reviews: an editor approves or rejects a take with a note. The take's status changes in the
job store, the review is kept for the pilot report, and it is appended to the take's manifest
(when the manifest lies in a take folder the server wrote)."""
from __future__ import annotations

import json
import logging

import grpc

from bridge.api import pb
from server import cas, paths
from server.errors import JobError
from server.takestore import write_json_atomic

log = logging.getLogger("takebridge.service")


def review_take(rt, request: "pb.ReviewTakeRequest") -> "pb.Take":
    take = rt.store.get_take(request.take_id)
    if take is None:
        raise JobError("unknown_take", f"no take {request.take_id[:128]!r} on this server",
                       grpc.StatusCode.NOT_FOUND)
    take.status = pb.APPROVED if request.approve else pb.REJECTED
    take.review_note, take.reviewer = request.note, request.reviewer
    rt.store.add_review(take.take_id, request.approve, request.note, request.reviewer)
    rt.store.update_take(take)
    manifest = cas.take_file(rt, take.manifest_url, take.take_id)
    if manifest is not None and manifest.is_file():
        data = json.loads(paths.read_bytes(manifest, "take manifest"))
        data.setdefault("reviews", []).append({"approve": request.approve, "note": request.note,
                                               "reviewer": request.reviewer})
        data["take"]["status"] = pb.TakeStatus.Name(take.status)
        write_json_atomic(manifest, data)
    log.info("take %s %s by %s: %s", take.take_id, "approved" if request.approve else "rejected",
             request.reviewer or "someone", request.note[:200])
    return take
