"""Search spaces for AT2 tuning: a generic parameter model and the HyperRec / LCBench spaces.

Importing this package does not import Ray; the functions that build or read Ray Tune
``param_space`` dicts import ``ray.tune`` when they are called.
"""

from search_spaces.errors import SearchSpaceError
from search_spaces.generic import from_param_space
from search_spaces.hyperrec import HYPERREC_SPACE, hyperrec_space
from search_spaces.keys import config_key
from search_spaces.lcbench import LCBENCH_SPACE, lcbench_space
from search_spaces.params import Categorical, Condition, Float, Integer, Parameter, Ratio
from search_spaces.registry import BUILTIN_SPACES, get_space
from search_spaces.space import SearchSpace
from search_spaces.validation import InvalidConfigError

__all__ = [
    "BUILTIN_SPACES",
    "Categorical",
    "Condition",
    "Float",
    "HYPERREC_SPACE",
    "Integer",
    "InvalidConfigError",
    "LCBENCH_SPACE",
    "Parameter",
    "Ratio",
    "SearchSpace",
    "SearchSpaceError",
    "config_key",
    "from_param_space",
    "get_space",
    "hyperrec_space",
    "lcbench_space",
]
