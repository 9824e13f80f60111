"""Learning-curve databases (HyperRec, LCBench): safe loading, verification and fetching."""

from at2_tune.databases.database import LearningCurveDatabase, TrainTestPair
from at2_tune.databases.files import fetch, locate, sha256_of, verified_files, verify_file
from at2_tune.databases.loader import load_database
from at2_tune.databases.registry import DATABASES, DatabaseSpec, ReleaseFile, get_spec

__all__ = ["DATABASES", "DatabaseSpec", "LearningCurveDatabase", "ReleaseFile", "TrainTestPair",
           "fetch", "get_spec", "load_database", "locate", "sha256_of", "verified_files",
           "verify_file"]
