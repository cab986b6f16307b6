"""Request and response bodies of the JSON API (pydantic), with every input validated.

Text fields refuse control characters and text that is not valid Unicode (lone surrogates,
which neither UTF-8 nor PostgreSQL can store); ids are positive 32-bit integers (the databases'
``integer``); positions are finite; problem classes are the codes of ``problems.yaml``. A body
that breaks a rule gets 422 with pydantic's description of what is wrong, before any database
is touched.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from skydask.checker.problems import problem_codes

__all__ = [
    "MAX_ID",
    "CheckIn",
    "CheckOut",
    "Credentials",
    "ImageOut",
    "MarkIn",
    "MergeIn",
    "NextOut",
    "ReportOut",
    "ReportPatch",
    "ReviewIn",
    "SessionOut",
    "UserOut",
]

MAX_ID = 2**31 - 1


def _clean(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("text must be valid Unicode (no lone surrogates)") from None
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError("text must not contain control characters")
    return text


def _known_class(code: str) -> str:
    if code not in problem_codes():
        raise ValueError(f"unknown problem class {code!r}")
    return code


Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Username = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{3,40}$"),
    Field(description="3-40 letters, digits, '_', '.' or '-'"),
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=128), AfterValidator(_clean)]
Label = Annotated[
    str, StringConstraints(max_length=200, strip_whitespace=True), AfterValidator(_clean)
]
ProblemCode = Annotated[
    str,
    AfterValidator(_known_class),
    Field(json_schema_extra={"enum": sorted(problem_codes())}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Credentials(_Strict):
    username: Username
    password: Password


class MarkIn(_Strict):
    x: float = Field(allow_inf_nan=False, description="pixel x, 0-based (astropy)")
    y: float = Field(allow_inf_nan=False, description="pixel y, 0-based (astropy), upwards")
    problem: ProblemCode
    label: Label | None = None
    false_positive: bool = False


class CheckIn(_Strict):
    verdict: Literal["fine", "problem"]
    marks: list[MarkIn] = Field(default_factory=list, max_length=50)


class ReportPatch(_Strict):
    problem: ProblemCode | None = None
    label: Label | None = None
    false_positive: bool | None = None


class ReviewIn(_Strict):
    status: Literal["open", "confirmed", "rejected"]


class MergeIn(_Strict):
    into: Id
    others: list[Id] = Field(min_length=1, max_length=100)


class UserOut(BaseModel):
    username: str
    role: str
    checks: int = 0
    reports: int = 0


class SessionOut(BaseModel):
    user: UserOut | None
    csrf_token: str


class ImageOut(BaseModel):
    id: int
    key: str
    release: str
    visit: str
    detector: str
    band: str
    mjd: float | None
    nx: int
    ny: int
    n_checks: int
    image_url: str
    mask_url: str


class NextOut(BaseModel):
    image: ImageOut | None
    message: str = ""


class ReportOut(BaseModel):
    id: int
    image_id: int
    user: str | None = None
    problem: str
    label: str | None
    x: float
    y: float
    ra: float
    dec: float
    false_positive: bool
    status: str
    merged_into: int | None
    created_at: datetime


class CheckOut(BaseModel):
    check_id: int
    image_id: int
    verdict: str
    reports: list[ReportOut]


def report_out(report: Any, user: str | None = None) -> ReportOut:
    """The API form of a :class:`~skydask.checker.models.Report`."""
    return ReportOut(
        id=report.id,
        image_id=report.image_id,
        user=user,
        problem=report.problem,
        label=report.label,
        x=report.x,
        y=report.y,
        ra=report.ra,
        dec=report.dec,
        false_positive=report.false_positive,
        status=report.status,
        merged_into=report.merged_into,
        created_at=report.created_at,
    )
