"""Export the reports as a Parquet table that :func:`skydask.open_catalog` opens.

One row per report (a problem marked at one position of one image), columns:

=================  =========================================================================
``report_id``      int64, the report's id in the database
``image_id``       string, the image's key (the stack's ``visit`` name, e.g. ``visit_0003``)
``release``        string, the data release the image was checked in
``visit``          string, the exposure (visit) number, or the image key when unknown
``detector``       string, the detector (CCD) name or number, empty when unknown
``band``           string
``mjd``            float64, mid-exposure (UTC MJD), NaN when unknown
``x``, ``y``       float64, pixel position, astropy's 0-based convention (pixel centres at
                   integers, ``y`` upwards as in the FITS file)
``ra``, ``dec``    float64, degrees (ICRS), the image WCS's answer for ``(x, y)``
``problem``        string, the class code (:mod:`.problems`); ``problem_group`` its group
``label``          string, the user's free label (null when none); raw text, escape it to show
``false_positive`` bool, the mark says a *mask* is there without a problem
``user``           string, the user name
``time``           timestamp (UTC) of the check
``status``         string, ``open``, ``confirmed``, ``rejected`` or ``merged``
``merged_into``    int64 (nullable), the report a duplicate was merged into
``file``, ``hdu``  where the image was read from when it was checked
=================  =========================================================================

``ra``/``dec`` make it a catalogue (the ``dc2`` schema flavour is detected from them), so cone
searches and cuts work on it like on any other; :mod:`.masklayer` turns it into mask planes.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from skydask.checker.db import Database
from skydask.checker.models import Check, Image, Report, User
from skydask.checker.problems import problem_classes

__all__ = ["COLUMNS", "export_reports", "reports_frame"]

COLUMNS = (
    "report_id",
    "image_id",
    "release",
    "visit",
    "detector",
    "band",
    "mjd",
    "x",
    "y",
    "ra",
    "dec",
    "problem",
    "problem_group",
    "label",
    "false_positive",
    "user",
    "time",
    "status",
    "merged_into",
    "file",
    "hdu",
)

_SCHEMA = pa.schema(
    [
        ("report_id", pa.int64()),
        ("image_id", pa.string()),
        ("release", pa.string()),
        ("visit", pa.string()),
        ("detector", pa.string()),
        ("band", pa.string()),
        ("mjd", pa.float64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("ra", pa.float64()),
        ("dec", pa.float64()),
        ("problem", pa.string()),
        ("problem_group", pa.string()),
        ("label", pa.string()),
        ("false_positive", pa.bool_()),
        ("user", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("status", pa.string()),
        ("merged_into", pa.int64()),
        ("file", pa.string()),
        ("hdu", pa.int64()),
    ]
)


def reports_frame(db: Database, release: str | None = None) -> pd.DataFrame:
    """Every report (of one release, or all) as a DataFrame with :data:`COLUMNS`."""
    groups = {c.code: c.group for c in problem_classes()}
    with db.read() as s:
        q = (
            select(
                Report.id,
                Image.key,
                Image.release,
                Image.visit,
                Image.detector,
                Image.band,
                Image.mjd,
                Report.x,
                Report.y,
                Report.ra,
                Report.dec,
                Report.problem,
                Report.label,
                Report.false_positive,
                User.username,
                Check.created_at,
                Report.status,
                Report.merged_into,
                Image.file,
                Image.hdu,
            )
            .join(Image, Image.id == Report.image_id)
            .join(User, User.id == Report.user_id)
            .join(Check, Check.id == Report.check_id)
            .order_by(Report.id)
        )
        if release is not None:
            q = q.where(Image.release == release)
        rows = s.execute(q).all()
    names = [c for c in COLUMNS if c != "problem_group"]
    frame = pd.DataFrame([tuple(r) for r in rows], columns=names)
    frame.insert(names.index("problem") + 1, "problem_group", frame["problem"].map(groups))
    frame["mjd"] = frame["mjd"].astype(np.float64)
    frame["time"] = pd.to_datetime(frame["time"]).dt.tz_localize("UTC")
    frame["merged_into"] = frame["merged_into"].astype("Int64")
    frame["false_positive"] = frame["false_positive"].astype(bool)
    return frame[list(COLUMNS)]


def export_reports(
    db: Database | str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    release: str | None = None,
) -> Path:
    """Write the reports as Parquet (see the module docstring), atomically; return the path.

    Examples
    --------
    >>> from skydask.checker.db import migrate
    >>> db = Database(getfixture("tmp_path") / "c.db"); _ = migrate(db)
    >>> path = export_reports(db, getfixture("tmp_path") / "reports.parquet")
    >>> pd.read_parquet(path).columns.tolist()[:4]
    ['report_id', 'image_id', 'release', 'visit']
    """
    database = db if isinstance(db, Database) else Database(db)
    frame = reports_frame(database, release)
    table = pa.Table.from_pandas(frame, schema=_SCHEMA, preserve_index=False)
    meta = {
        "skydask.checker": json.dumps(
            {
                "pixel_convention": "astropy 0-based, pixel centres at integers, y upwards",
                "ra_dec": "deg, ICRS, through each image's WCS",
                "release": release,
            }
        )
    }
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        pq.write_table(table, tmp, row_group_size=100_000)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target
