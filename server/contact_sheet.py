"""Contact sheets: one PNG that shows a source range and its takes side by side for review.

Each labelled row samples its clip evenly; the frame number under each thumbnail says which frame.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from bridge import files

MARGIN = 8
LABEL_HEIGHT = 28
CAPTION_HEIGHT = 20
BACKGROUND = (24, 24, 24)
LABEL_COLOUR = (240, 240, 240)
CAPTION_COLOUR = (170, 170, 170)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def contact_sheet(
    rows: list[tuple[str, np.ndarray]],
    dest: str | Path,
    *,
    columns: int = 6,
    thumb_width: int = 320,
) -> Path:
    """Write a PNG grid to `dest`: per (label, frames) row, `columns` frames sampled evenly.

    frames is (N, H, W, 3) uint8 RGB; clips of different sizes share the sheet, each scaled to
    `thumb_width`. Frame numbers are 0-based within the clip. Returns `dest`.
    """
    dest = Path(dest)
    if not rows:
        raise ValueError("a contact sheet needs at least one (label, frames) row")
    if columns < 1 or thumb_width < 16:
        raise ValueError(f"columns={columns} and thumb_width={thumb_width} must be at least 1 and 16")
    bands = [_row_band(label, frames, columns, thumb_width) for label, frames in rows]
    top_margin = np.full((MARGIN, bands[0].shape[1], 3), BACKGROUND, np.uint8)
    _write_png_atomically(np.vstack([top_margin, *bands]), dest)
    return dest


def sample_indices(frame_count: int, columns: int) -> list[int]:
    """`columns` frame indices spread evenly from the first frame to the last, without repeats."""
    return sorted(set(np.linspace(0, frame_count - 1, num=min(columns, frame_count)).round().astype(int).tolist()))


def _row_band(label: str, frames: np.ndarray, columns: int, thumb_width: int) -> np.ndarray:
    """One row of the sheet: the label, then the thumbnails, each with its frame number under it."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] == 0 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"row {label!r} has frames {frames.shape} {frames.dtype}; give (N, H, W, 3) uint8 RGB with N >= 1"
        )
    height, width = frames.shape[1:3]
    thumb_height = max(1, round(height * thumb_width / width))
    band = np.full(
        (LABEL_HEIGHT + thumb_height + CAPTION_HEIGHT + MARGIN, MARGIN + columns * (thumb_width + MARGIN), 3),
        BACKGROUND,
        np.uint8,
    )
    cv2.putText(band, label, (MARGIN, LABEL_HEIGHT - 9), FONT, 0.6, LABEL_COLOUR, 1, cv2.LINE_AA)
    for column, index in enumerate(sample_indices(frames.shape[0], columns)):
        left = MARGIN + column * (thumb_width + MARGIN)
        # INTER_AREA averages whole source pixels, so shrinking does not alias fine detail.
        thumb = cv2.resize(frames[index], (thumb_width, thumb_height), interpolation=cv2.INTER_AREA)
        band[LABEL_HEIGHT : LABEL_HEIGHT + thumb_height, left : left + thumb_width] = thumb
        baseline = LABEL_HEIGHT + thumb_height + CAPTION_HEIGHT - 6
        cv2.putText(band, f"frame {index}", (left, baseline), FONT, 0.45, CAPTION_COLOUR, 1, cv2.LINE_AA)
    return band


def _write_png_atomically(sheet: np.ndarray, dest: Path) -> None:
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"OpenCV could not encode the {sheet.shape[1]}x{sheet.shape[0]} contact sheet as PNG")
    # Readers (the editor, a browser) never see half a PNG: written beside it, then renamed over.
    files.write_atomic(dest, encoded.tobytes())
