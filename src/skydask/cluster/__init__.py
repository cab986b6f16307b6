"""Dask clusters for skydask: a LocalCluster or SLURM jobs through dask-jobqueue.

``connect(profile)`` returns a client; the profile (``cluster_configs/*.yaml``) says where the
workers run. Only ``run`` and ``cli`` use this package; analyses get their client from dask's
context, so the same analysis code runs on a laptop and on hundreds of nodes.
"""

from skydask.cluster.connect import SkydaskClient, connect, job_script
from skydask.cluster.profile import Profile, available_profiles, load_profile

__all__ = [
    "Profile",
    "SkydaskClient",
    "available_profiles",
    "connect",
    "job_script",
    "load_profile",
]
