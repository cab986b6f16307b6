"""Internals of :mod:`skydask.analyses.stellar_locus`, split by concern.

:mod:`.config` (parameters and their defaults), :mod:`.selection` (where-strings, extinction,
the star frame), :mod:`.fitting` (line geometry and per-partition tasks), :mod:`.quantiles`
(exact quantiles in two decomposable passes), :mod:`.result` (the result, its tables, verdicts,
figures and files). The public entry point is
:func:`skydask.analyses.stellar_locus.stellar_locus`.
"""
