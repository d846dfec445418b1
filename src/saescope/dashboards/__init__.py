"""Feature-centric and prompt-centric dashboards as self-contained HTML files (and inline in
Jupyter), rendered by the same panels as the web viewer (web/)."""

from saescope.dashboards.dashboard import (
    Dashboard,
    feature_dashboard,
    prompt_dashboard,
    write_dashboard,
    write_prompt_dashboard,
)
from saescope.dashboards.layout import PANELS, Layout
from saescope.dashboards.sources import densest_features, parse_feature_ids, random_live_features

__all__ = [
    "PANELS",
    "Dashboard",
    "Layout",
    "densest_features",
    "feature_dashboard",
    "parse_feature_ids",
    "prompt_dashboard",
    "random_live_features",
    "write_dashboard",
    "write_prompt_dashboard",
]
