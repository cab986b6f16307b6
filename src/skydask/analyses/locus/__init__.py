"""Internals of :mod:`skydask.analyses.stellar_locus`, split by concern.

:mod:`.config` (parameters and their defaults), :mod:`.selection` (where-strings, extinction),
:mod:`.stars` (the kept stars as compact per-piece arrays), :mod:`.fitting` (line geometry and
per-partition tasks), :mod:`.quantiles` (exact quantiles in decomposable passes, sharing passes
where they can), :mod:`.result` (the result, its tables, verdicts, figures and files). The
public entry point is :func:`skydask.analyses.stellar_locus.stellar_locus`.
"""
