"""The `takebridge` client commands, next to the core they use (as OpenTimelineIO keeps its
console/ in its package): `submit`, `takes`, `jobs`, `workers`, `cancel`, `review` (jobs.py) and `timeline
...` (timeline.py), and what they share (base.py, progress_bar.py). They need a server only at the
other end of the wire; `takebridge` (server/cli.py) adds the server's own commands."""
from __future__ import annotations

from . import jobs, timeline


def add_parsers(sub) -> None:
    jobs.add_parsers(sub)
    timeline.add_parser(sub)


COMMANDS = {"submit": jobs.cmd_submit, "takes": jobs.cmd_takes, "jobs": jobs.cmd_jobs, "workers": jobs.cmd_workers,
            "cancel": jobs.cmd_cancel,
            "review": jobs.cmd_review, "timeline": timeline.run}
