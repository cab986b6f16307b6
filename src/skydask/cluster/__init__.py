"""Dask clusters for skydask: ``connect("local")`` today; SLURM profiles come with issue 3.

Only ``run`` and ``cli`` use this package; analyses get their client from dask's context.
"""

from skydask.cluster.local import connect

__all__ = ["connect"]
