"""vpanoptic: real-time video panoptic segmentation and tracking."""

from .errors import ConfigError, ModelError, SourceError, StageError, UserError
from .types import Category, DatasetMeta, Frame, PanopticFrame

__version__ = "0.1.0"

__all__ = [
    "Category",
    "ConfigError",
    "DatasetMeta",
    "Frame",
    "ModelError",
    "PanopticFrame",
    "SourceError",
    "StageError",
    "UserError",
    "__version__",
]
